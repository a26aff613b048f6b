import { PatchbayError } from '@patchbay/core';
import { OutputSink } from '../output.js';
import type { PhaseDeps, TaskRun } from '../run.js';
import { agentHasNetwork } from './fetch.js';

/**
 * setup: the task's setup script, with its secrets, while the sandbox still has the network;
 * then the network is taken away unless the agent may keep it.
 */
export async function setupPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  const { task, sandbox } = run;
  if (sandbox === undefined) throw new PatchbayError('internal_error', 'setup needs a sandbox');
  const script = task.environment.setup;
  if (script === null) return;
  await run.phase('setup');
  const secrets = await deps.store.secrets(task.id);
  const sink = new OutputSink({
    phase: 'setup',
    emit: run.events.emit,
    secrets: Object.values(secrets),
    budget: run.budget,
  });
  const result = await sandbox.exec(script, {
    env: { ...task.environment.env, ...secrets },
    timeoutMs: Math.max(1000, run.deadline - Date.now()),
    signal: run.signal,
    onOutput: sink.write,
  });
  sink.end();
  run.events.emit({
    type: 'command',
    phase: 'setup',
    command: script,
    exitCode: result.exitCode,
    durationMs: result.durationMs,
    ...(result.timedOut ? { timedOut: true } : {}),
  });
  run.signal.throwIfAborted();
  if (result.exitCode !== 0) {
    const tail = sink.mask(result.output.toString('utf8')).slice(-2000);
    throw new PatchbayError(
      'setup_failed',
      result.timedOut
        ? 'setup ran out of time'
        : `setup exited with ${result.exitCode ?? result.signal}: ${tail}`,
    );
  }
  if (!agentHasNetwork(task, deps.options.allowAgentNetwork)) await sandbox.disableNetwork();
}
