/**
 * Why a patch was refused. Stable: the agent loop and its tests branch on these, and the model
 * sees the message, never the code.
 *
 * - `invalid_patch`: the text is not a patch (missing `*** Begin Patch` / `*** End Patch`).
 * - `invalid_hunk`: a hunk is malformed (bad header, empty update, stray line).
 * - `no_changes`: the patch holds no hunk at all.
 * - `invalid_path`: a path is absolute, escapes the root, or leads out through a symbolic link.
 * - `not_found`: a file to update or delete does not exist.
 * - `is_directory`: a file operation names a directory.
 * - `not_text`: a file to update is not UTF-8 text.
 * - `context_not_found`: an update's context or old lines are not in the file.
 * - `io_error`: the file system failed (permissions, disk full, sandbox gone, …).
 */
export type ApplyPatchErrorCode =
  | 'invalid_patch'
  | 'invalid_hunk'
  | 'no_changes'
  | 'invalid_path'
  | 'not_found'
  | 'is_directory'
  | 'not_text'
  | 'context_not_found'
  | 'io_error';

/** Files a patch changed, each list in patch order, paths as the patch wrote them. */
export interface AffectedPaths {
  added: string[];
  /** Updated files; a moved file is listed under its new path, as the reference does. */
  modified: string[];
  deleted: string[];
  /** Updates that moved their file (`*** Move to:`); the new path is also in `modified`. */
  moved: { from: string; to: string }[];
}

export interface ApplyPatchErrorOptions {
  cause?: unknown;
  /** 1-based line of the patch the parser stopped at. */
  lineNumber?: number;
  /** What was already written when the failure happened. */
  applied?: AffectedPaths;
}

/** An empty {@link AffectedPaths}. */
export function noAffectedPaths(): AffectedPaths {
  return { added: [], modified: [], deleted: [], moved: [] };
}

/**
 * A refused or partly applied patch. Not a `PatchbayError` (`@patchbay/core`): a bad patch is an
 * ordinary tool result the model reads and corrects, not a task failure, so it carries its own
 * codes instead of widening the task error codes.
 */
export class ApplyPatchError extends Error {
  override readonly name = 'ApplyPatchError';
  readonly code: ApplyPatchErrorCode;
  /** 1-based patch line of a parse error; undefined for errors found while applying. */
  readonly lineNumber: number | undefined;
  /**
   * Changes written before the failure. They stay on disk (hunks are applied in order and not
   * rolled back, like the reference), so the caller can tell the model what already happened.
   */
  readonly applied: AffectedPaths;

  constructor(code: ApplyPatchErrorCode, message: string, options: ApplyPatchErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.lineNumber = options.lineNumber;
    this.applied = options.applied ?? noAffectedPaths();
  }
}

/** Whether `err` is an {@link ApplyPatchError} (with the given code, when one is given). */
export function isApplyPatchError(
  err: unknown,
  code?: ApplyPatchErrorCode,
): err is ApplyPatchError {
  return err instanceof ApplyPatchError && (code === undefined || err.code === code);
}
