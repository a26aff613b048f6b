import path from 'node:path';

/** Where the repository lives inside the sandbox; every tool works below it. */
export const WORKSPACE = '/workspace';

/**
 * A tool call the model can fix: bad arguments, a path outside the workspace, a refused command.
 * Its message goes back to the model as the tool's output; it never ends the run.
 */
export class ToolInputError extends Error {
  override readonly name = 'ToolInputError';
}

/** True when `candidate` (absolute, normalised) is `root` or below it. */
export function isInside(root: string, candidate: string): boolean {
  return candidate === root || candidate.startsWith(root.endsWith('/') ? root : `${root}/`);
}

/**
 * The absolute working directory a tool call names: relative to `base` (by default `root`), or
 * absolute; either way inside `root`.
 *
 * This checks intent, not security: a command can `cd` anywhere the sandbox lets it. Refusing a
 * workdir outside the workspace tells the model early that it lost track of where the repository
 * is, and keeps `apply_patch` (which is confined) consistent with `shell`.
 *
 * @throws {ToolInputError} when the directory is outside `root`.
 */
export function resolveWorkdir(
  workdir: string | undefined,
  root: string = WORKSPACE,
  base: string = root,
): string {
  if (workdir === undefined || workdir.trim() === '') return base;
  if (workdir.includes('\0')) throw new ToolInputError('workdir must not contain a NUL byte');
  const resolved = path.posix.resolve(base, workdir);
  if (!isInside(root, resolved)) {
    throw new ToolInputError(
      `workdir ${JSON.stringify(workdir)} is outside ${root}; use a path inside the repository (${root}) or a relative one`,
    );
  }
  return resolved;
}
