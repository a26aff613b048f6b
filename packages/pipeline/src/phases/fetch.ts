import type { Task } from '@patchbay/core';
import type { SandboxNetwork, SandboxPreload } from '@patchbay/sandbox';
import type { RepoSource } from '../ports.js';
import type { PhaseDeps, TaskRun } from '../run.js';

/**
 * fetch: resolves the task's ref to its base commit (turn 1) or makes sure the mirror still has
 * the base (later turns), while the sandbox is made beside it: neither needs the other, and
 * `provision` waits for the sandbox if it is not ready yet.
 */
export async function fetchPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  await run.phase('fetch');
  const { task } = run;
  const resolving = deps.repos.resolve(task.repo.url, run.base ?? task.repo.ref, run.signal);
  // Its failure is seen where it is awaited; until then it must not count as unhandled.
  resolving.catch(() => undefined);
  run.acquiring = deps.sandboxes.create(
    {
      image: task.environment.image,
      taskId: task.id,
      env: task.environment.env,
      network: sandboxNetwork(task, deps.options.allowAgentNetwork),
      preload: checkoutPreload(task, resolving, deps.repos),
    },
    { signal: run.acquisitionSignal },
  );
  run.acquiring.catch(() => undefined);
  const base = await resolving;
  if (run.base === null) await run.update((t) => ({ ...t, baseCommit: base }));
  run.base = base;
}

/**
 * The next task of the same tenant and repository most likely starts from the same commit: the
 * pool keeps a sandbox with this one checked out (`provision` checks what it holds). The key
 * names the tenant, so one tenant's checkout never goes to another's task.
 */
function checkoutPreload(task: Task, base: Promise<string>, repos: RepoSource): SandboxPreload {
  return {
    key: JSON.stringify([task.tenant, task.repo.url]),
    prepare: async (sandbox, signal) => {
      const sha = await base;
      await repos.checkout(sandbox, task.repo.url, sha, signal);
      return sha;
    },
  };
}

/** The agent may keep the network only when the task asks and the operator allows it. */
export function agentHasNetwork(task: Task, allowAgentNetwork: boolean): boolean {
  return task.environment.network === 'on' && allowAgentNetwork;
}

/**
 * Setup needs the network (it installs things); it is taken away again before the agent. An
 * agent that runs in the sandbox, or one of an allowlist network, needs none: it reaches the
 * model gateway and the egress proxy through `Sandbox.reach`, a loopback port.
 */
function sandboxNetwork(task: Task, allowAgentNetwork: boolean): SandboxNetwork {
  return task.environment.setup !== null || agentHasNetwork(task, allowAgentNetwork)
    ? 'outbound'
    : 'none';
}
