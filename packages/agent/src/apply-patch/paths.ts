import { ApplyPatchError } from './errors.js';

/**
 * The normal form of a patch path: relative, `/`-separated, without `.`, `..` or empty parts.
 * `a/./b`, `a//b` and `a/x/../b` all become `a/b`; this is the form a `PatchFileSystem`
 * receives, so it never has to deal with `..` itself.
 *
 * Safety: the reference accepts absolute paths and `..`; here a patch is confined to its root
 * (the sandbox's `/workspace`, or the CLI's working directory), so both are refused.
 *
 * @throws {ApplyPatchError} `invalid_path`.
 */
export function normalizePatchPath(path: string): string {
  if (path === '') throw new ApplyPatchError('invalid_path', 'Invalid path: the path is empty');
  if (path.includes('\0')) {
    throw new ApplyPatchError(
      'invalid_path',
      `Invalid path ${JSON.stringify(path)}: it contains a NUL byte`,
    );
  }
  if (path.startsWith('/') || path.startsWith('\\') || /^[A-Za-z]:[\\/]/.test(path)) {
    throw new ApplyPatchError(
      'invalid_path',
      `Invalid path ${path}: absolute paths are not allowed; use a path relative to the working directory`,
    );
  }
  const parts: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (parts.pop() === undefined) {
        throw new ApplyPatchError(
          'invalid_path',
          `Invalid path ${path}: it leads outside the working directory`,
        );
      }
      continue;
    }
    parts.push(part);
  }
  if (parts.length === 0) {
    throw new ApplyPatchError('invalid_path', `Invalid path ${path}: it does not name a file`);
  }
  return parts.join('/');
}
