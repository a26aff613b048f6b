import { PatchbayError, capText } from '@patchbay/core';
import { OutputSink } from '../output.js';
import type { PhaseDeps, TaskRun } from '../run.js';

/**
 * verify: the repository's own tests on the collected tree (collecting quiesced the sandbox, and
 * nothing has run since). Skipped when the task has none or the agent ran out of time.
 */
export async function verifyPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  const { task, sandbox } = run;
  const command = task.environment.verify;
  if (command === null || run.outcome?.stopReason === 'timeout') return;
  if (sandbox === undefined) throw new PatchbayError('internal_error', 'verify needs a sandbox');
  await run.phase('verify');
  const sink = new OutputSink({ phase: 'verify', emit: run.events.emit, budget: run.budget });
  const result = await sandbox.exec(command, {
    env: task.environment.env,
    timeoutMs: Math.max(1000, run.deadline - Date.now()),
    signal: run.signal,
    onOutput: sink.write,
  });
  sink.end();
  run.signal.throwIfAborted();
  run.verify = {
    command,
    exitCode: result.exitCode,
    passed: result.exitCode === 0,
    output: capText(result.output.toString('utf8'), deps.options.verifyOutputBytes).text,
    durationMs: result.durationMs,
  };
  run.events.emit({
    type: 'command',
    phase: 'verify',
    command,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    ...(result.timedOut ? { timedOut: true } : {}),
  });
}
