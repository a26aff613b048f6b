import { PatchbayError, withCurrentTurn } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
import { resetToCollected } from '../collect.js';
import type { PhaseDeps, TaskRun } from '../run.js';

/** Where the previous turn's patch is put to be applied (Patchbay's scratch tmpfs). */
const PREVIOUS_PATCH = '/run/patchbay/turn/previous.diff';

/**
 * provision: the repository at the base commit in the sandbox's /workspace, and from turn 2 on
 * the task's patch so far applied on top, so the turn starts from the tree the last one left.
 */
export async function provisionPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  await run.phase('provision', run.from === null ? {} : { warm: false });
  if (run.acquiring === undefined || run.base === null)
    throw new PatchbayError('internal_error', 'provision needs fetch first');
  const sandbox = (run.sandbox = await run.acquiring);
  // A pooled sandbox may hold this repository's checkout already (see the fetch phase's
  // preload); one of another commit is emptied first.
  run.workspacePreloaded = sandbox.preloaded === run.base;
  if (!run.workspacePreloaded) {
    if (sandbox.preloaded !== undefined) await emptyWorkspace(sandbox, run.signal);
    await deps.repos.checkout(sandbox, run.task.repo.url, run.base, run.signal);
  }
  if (run.from !== null) {
    await applyPatch(sandbox, await run.previousPatch(), run.signal);
    await run.update((t) => withCurrentTurn(t, (turn) => ({ ...turn, warm: false })));
  }
}

/**
 * A warm start: the sandbox the previous turn left, kept alive by this worker, with its
 * workspace put back to exactly what that turn's collection saw (verify may have changed files
 * since). False when there is none to take (or it could not be put back): the turn then
 * provisions a fresh one, with the same result.
 */
export async function resumeKept(run: TaskRun, deps: PhaseDeps): Promise<boolean> {
  if (run.from === null) return false;
  const sandbox = await deps.keeper.take(run.id, run.from, run.fromAttempt);
  if (sandbox === undefined) return false;
  try {
    await resetToCollected(sandbox, run.signal);
  } catch (err) {
    run.signal.throwIfAborted();
    deps.log.warn({ err, taskId: run.id }, 'a kept sandbox could not be reused; starting afresh');
    await sandbox.destroy().catch(() => undefined);
    return false;
  }
  run.sandbox = sandbox;
  run.warm = true;
  await run.phase('provision', { warm: true });
  await run.update((t) => withCurrentTurn(t, (turn) => ({ ...turn, warm: true })));
  return true;
}

async function emptyWorkspace(sandbox: Sandbox, signal: AbortSignal): Promise<void> {
  const emptied = await sandbox.exec(['find', '/workspace', '-mindepth', '1', '-delete'], {
    signal,
    timeoutMs: 300_000,
  });
  if (emptied.exitCode !== 0) {
    throw new PatchbayError(
      'sandbox_error',
      `emptying a pooled sandbox's workspace failed: ${emptied.output.toString('utf8').slice(-1000)}`,
    );
  }
}

async function applyPatch(sandbox: Sandbox, patch: Buffer, signal: AbortSignal): Promise<void> {
  if (patch.length === 0) return;
  await sandbox.writeFile(PREVIOUS_PATCH, patch, { signal });
  const applied = await sandbox.exec(
    [
      'git',
      '-c',
      'core.hooksPath=/dev/null',
      'apply',
      '--binary',
      '--whitespace=nowarn',
      PREVIOUS_PATCH,
    ],
    { signal, timeoutMs: 300_000 },
  );
  if (applied.exitCode !== 0) {
    throw new PatchbayError(
      'sandbox_error',
      `the task's patch so far did not apply to a fresh checkout: ${applied.output.toString('utf8').slice(-1000)}`,
    );
  }
}
