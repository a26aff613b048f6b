// Applies parsed hunks the way the reference (openai/codex, codex-rs/apply-patch) does: hunks in
// patch order, each written as soon as it is computed, nothing rolled back when a later one fails.

import { ApplyPatchError, noAffectedPaths, type AffectedPaths } from './errors.js';
import type { PatchFileSystem } from './file-system.js';
import { parsePatch, type Hunk, type UpdateFileChunk } from './parser.js';
import { normalizePatchPath } from './paths.js';
import { seekSequence } from './seek-sequence.js';
import { SourceFile, type Replacement } from './source-file.js';

/** What a successful patch changed. */
export interface ApplyPatchResult extends AffectedPaths {
  /** The reference's report: `Success. Updated the following files:` then `A`/`M`/`D` lines. */
  summary: string;
}

export interface ApplyPatchOptions {
  /**
   * Stops before the next hunk once aborted, rejecting with the signal's reason; hunks already
   * applied stay. Pass the same signal to the file system to interrupt a hunk in flight.
   */
  signal?: AbortSignal;
}

/**
 * Parses `patch` and applies it to `fs`.
 *
 * Paths are checked before anything is written; a patch naming an absolute path or one outside
 * the root changes nothing. After that, hunks are applied in order and a failure leaves the
 * earlier hunks applied (listed in the error's `applied`).
 *
 * @throws {ApplyPatchError} on a malformed patch, a refused path or a hunk that does not apply.
 */
export async function applyPatch(
  patch: string,
  fs: PatchFileSystem,
  options: ApplyPatchOptions = {},
): Promise<ApplyPatchResult> {
  const { hunks } = parsePatch(patch);
  if (hunks.length === 0) {
    throw new ApplyPatchError('no_changes', 'No files were modified.');
  }
  const planned = hunks.map((hunk) => ({ hunk, ...resolvePaths(hunk) }));

  const applied = noAffectedPaths();
  for (const { hunk, target, destination } of planned) {
    options.signal?.throwIfAborted();
    try {
      await applyHunk(hunk, target, destination, fs, applied);
    } catch (err) {
      throw asApplyError(err, applied);
    }
  }
  return { ...applied, summary: formatSummary(applied) };
}

/** The reference's success report, one line per file, each ending in a newline. */
export function formatSummary(affected: AffectedPaths): string {
  const lines = [
    'Success. Updated the following files:',
    ...affected.added.map((path) => `A ${path}`),
    ...affected.modified.map((path) => `M ${path}`),
    ...affected.deleted.map((path) => `D ${path}`),
  ];
  return `${lines.join('\n')}\n`;
}

/**
 * The new contents of a file after the chunks of one `*** Update File:` hunk. Pure: the
 * building block for previews and for applying to any storage.
 *
 * @param displayPath path used in error messages.
 * @throws {ApplyPatchError} `context_not_found` when a chunk's context or old lines are missing.
 */
export function applyChunks(
  contents: string,
  chunks: readonly UpdateFileChunk[],
  displayPath: string,
): string {
  const file = SourceFile.parse(contents);
  const replacements = computeReplacements(file.lineTexts(), chunks, displayPath);
  try {
    file.applyReplacements(replacements);
  } catch (err) {
    // Only an `*** End of File` chunk can land on lines an earlier chunk already replaced.
    throw new ApplyPatchError(
      'context_not_found',
      `Failed to apply the chunks to ${displayPath}: they overlap (${(err as Error).message})`,
      { cause: err },
    );
  }
  return file.toString();
}

function resolvePaths(hunk: Hunk): { target: string; destination: string | undefined } {
  const target = normalizePatchPath(hunk.path);
  const destination =
    hunk.type === 'update' && hunk.movePath !== undefined
      ? normalizePatchPath(hunk.movePath)
      : undefined;
  return { target, destination };
}

async function applyHunk(
  hunk: Hunk,
  target: string,
  destination: string | undefined,
  fs: PatchFileSystem,
  applied: AffectedPaths,
): Promise<void> {
  switch (hunk.type) {
    case 'add': {
      await writeText(fs, target, hunk.path, hunk.contents);
      applied.added.push(hunk.path);
      return;
    }
    case 'delete': {
      const what = `Failed to delete file ${hunk.path}`;
      const kind = await fsCall(what, () => fs.stat(target));
      if (kind === undefined) {
        throw new ApplyPatchError('not_found', `${what}: No such file or directory`);
      }
      if (kind === 'directory') {
        throw new ApplyPatchError('is_directory', `${what}: Is a directory`);
      }
      await fsCall(what, () => fs.deleteFile(target));
      applied.deleted.push(hunk.path);
      return;
    }
    case 'update': {
      const original = await readText(fs, target, hunk.path);
      const contents = applyChunks(original, hunk.chunks, hunk.path);
      // The reference writes the destination, then removes the source; with both the same
      // file, that would delete the freshly updated file, so such a "move" is a plain update.
      if (destination !== undefined && destination !== target && hunk.movePath !== undefined) {
        await writeText(fs, destination, hunk.movePath, contents);
        await fsCall(`Failed to remove original ${hunk.path}`, () => fs.deleteFile(target));
        applied.modified.push(hunk.movePath);
        applied.moved.push({ from: hunk.path, to: hunk.movePath });
      } else {
        await writeText(fs, target, hunk.path, contents);
        applied.modified.push(hunk.path);
      }
      return;
    }
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

async function readText(fs: PatchFileSystem, path: string, displayPath: string): Promise<string> {
  const what = `Failed to read file to update ${displayPath}`;
  const kind = await fsCall(what, () => fs.stat(path));
  if (kind === undefined) {
    throw new ApplyPatchError('not_found', `${what}: No such file or directory`);
  }
  if (kind === 'directory') {
    throw new ApplyPatchError('is_directory', `${what}: Is a directory`);
  }
  if (kind === 'other') {
    throw new ApplyPatchError('io_error', `${what}: not a regular file`);
  }
  const bytes = await fsCall(what, () => fs.readFile(path));
  try {
    // ignoreBOM keeps a byte order mark in the text, so it is written back unchanged.
    return utf8.decode(bytes);
  } catch (err) {
    throw new ApplyPatchError('not_text', `${what}: the file is not valid UTF-8 text`, {
      cause: err,
    });
  }
}

async function writeText(
  fs: PatchFileSystem,
  path: string,
  displayPath: string,
  contents: string,
): Promise<void> {
  const what = `Failed to write file ${displayPath}`;
  const kind = await fsCall(what, () => fs.stat(path));
  if (kind === 'directory') {
    throw new ApplyPatchError('is_directory', `${what}: Is a directory`);
  }
  if (kind === 'other') {
    // A FIFO or device would block or swallow the write; only regular files are replaced.
    throw new ApplyPatchError('io_error', `${what}: not a regular file`);
  }
  await fsCall(what, () => fs.writeFile(path, contents));
}

/** Runs one file-system call, turning its failure into an `io_error` that says what failed. */
async function fsCall<T>(what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (err) {
    if (err instanceof ApplyPatchError) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new ApplyPatchError('io_error', `${what}: ${reason}`, { cause: err });
  }
}

/** The error to throw for a failed hunk, carrying what the earlier hunks changed. */
function asApplyError(err: unknown, applied: AffectedPaths): ApplyPatchError {
  if (err instanceof ApplyPatchError) {
    return new ApplyPatchError(err.code, err.message, {
      cause: err.cause ?? err,
      applied,
      ...(err.lineNumber === undefined ? {} : { lineNumber: err.lineNumber }),
    });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new ApplyPatchError('io_error', reason, { cause: err, applied });
}

function computeReplacements(
  lines: readonly string[],
  chunks: readonly UpdateFileChunk[],
  displayPath: string,
): Replacement[] {
  const replacements: Replacement[] = [];
  let lineIndex = 0;

  for (const chunk of chunks) {
    if (chunk.changeContext !== undefined) {
      const at = seekSequence(lines, [chunk.changeContext], lineIndex, false);
      if (at === undefined) {
        throw new ApplyPatchError(
          'context_not_found',
          `Failed to find context '${chunk.changeContext}' in ${displayPath}`,
        );
      }
      lineIndex = at + 1;
    }

    if (chunk.oldLines.length === 0) {
      // Pure addition: the reference appends at the end of the file, whatever the context.
      replacements.push({ start: lines.length, oldLength: 0, lines: [...chunk.newLines] });
      continue;
    }

    let pattern = chunk.oldLines;
    let newLines = chunk.newLines;
    let found = seekSequence(lines, pattern, lineIndex, chunk.isEndOfFile);
    if (found === undefined && pattern[pattern.length - 1] === '') {
      // A trailing empty old line usually stands for the file's final newline, which is not a
      // line of its own here: retry without it.
      pattern = pattern.slice(0, -1);
      if (newLines[newLines.length - 1] === '') newLines = newLines.slice(0, -1);
      found = seekSequence(lines, pattern, lineIndex, chunk.isEndOfFile);
    }
    if (found === undefined) {
      throw new ApplyPatchError(
        'context_not_found',
        `Failed to find expected lines in ${displayPath}:\n${chunk.oldLines.join('\n')}`,
      );
    }

    // Context lines stay as they are in the file (text and line ending): only the runs between
    // them are replaced. A fuzzy match (trailing spaces, typographic quotes) thus never rewrites
    // a line the patch did not mean to change.
    let oldStart = 0;
    let newStart = 0;
    for (const [oldContext, newContext] of chunk.contextLineIndices) {
      // The trailing empty context line may have been dropped above.
      if (oldContext >= pattern.length || newContext >= newLines.length) break;
      if (oldStart !== oldContext || newStart !== newContext) {
        replacements.push({
          start: found + oldStart,
          oldLength: oldContext - oldStart,
          lines: newLines.slice(newStart, newContext),
        });
      }
      oldStart = oldContext + 1;
      newStart = newContext + 1;
    }
    if (oldStart !== pattern.length || newStart !== newLines.length) {
      replacements.push({
        start: found + oldStart,
        oldLength: pattern.length - oldStart,
        lines: newLines.slice(newStart),
      });
    }
    lineIndex = found + pattern.length;
  }

  // Stable sort: replacements at the same line keep patch order.
  return replacements.sort((a, b) => a.start - b.start);
}
