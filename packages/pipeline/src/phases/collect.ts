import { ARTIFACTS, PatchbayError } from '@patchbay/core';
import { collectChanges, collectPatch } from '../collect.js';
import type { PhaseDeps, TaskRun } from '../run.js';

/**
 * collect: the task's cumulative patch against the base commit and, from turn 2 on, what this
 * turn alone changed (against the base with the last turn's patch applied), both stored as the
 * turn's own artifacts: a later turn never rewrites an earlier one's.
 */
export async function collectPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  const { sandbox, base } = run;
  if (sandbox === undefined || base === null)
    throw new PatchbayError('internal_error', 'collect needs a sandbox and a base');
  await run.phase('collect');
  const { task } = run;
  const maxBytes = deps.options.maxPatchBytes;
  const patch = await collectPatch(sandbox, base, {
    maxBytes,
    signal: run.signal,
    restoreBase: (target, path, stop) =>
      deps.repos.checkout(target, task.repo.url, base, stop, path),
  });
  let changes = patch;
  if (run.from !== null) {
    const previous = await run.previousPatch();
    changes = await collectChanges(sandbox, base, previous, { maxBytes, signal: run.signal });
  }
  run.collected = { patch, changes };
  await Promise.all([
    deps.artifacts.put(task.id, ARTIFACTS.turnPatch(task.turn, run.attempt), patch.patch),
    deps.artifacts.put(task.id, ARTIFACTS.turnChanges(task.turn, run.attempt), changes.patch),
  ]);
}
