import { PatchbayError } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
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
  const setup = task.environment.setup;
  if (setup !== null) await setUp(run, deps, sandbox, setup);
  // The sandbox was made with the network for setup, or to join the gateway's network later (an
  // agent runtime in the sandbox, an allowlist): it goes now, unless the agent may keep it.
  if (sandbox.spec.network === 'outbound' && !agentHasNetwork(task, deps.options.allowAgentNetwork))
    await sandbox.disableNetwork();
}

/** The setup script, or the cached environment it made (and the maintenance script). */
async function setUp(
  run: TaskRun,
  deps: PhaseDeps,
  sandbox: Sandbox,
  setup: string,
): Promise<void> {
  const { task } = run;
  await run.phase('setup');
  const secrets = await deps.store.secrets(task.id);
  const cache = deps.environments;
  const image = cache ? await deps.sandboxes.imageId(task.environment.image) : '';
  const key = cache ? await cache.keyOf(task, image, sandbox, run.signal) : null;
  const cached =
    cache !== undefined &&
    key !== null &&
    (await cache.restore(task.tenant, key, sandbox, run.signal));
  run.setupCached = cached;
  // From the cache, setup runs only when the task says so; its maintenance script runs instead.
  const script = cached
    ? task.environment.setupAlways
      ? setup
      : task.environment.maintenance
    : setup;
  if (script !== null) await runScript(run, sandbox, script, secrets);
  if (cache && key !== null && !cached)
    await cache.save(task, key, image, sandbox, Object.values(secrets), run.signal);
}

async function runScript(
  run: TaskRun,
  sandbox: Sandbox,
  script: string,
  secrets: Record<string, string>,
): Promise<void> {
  const { task } = run;
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
}
