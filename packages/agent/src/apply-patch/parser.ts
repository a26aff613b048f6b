// Parser of the Codex patch format, following the reference (openai/codex,
// codex-rs/apply-patch/src/parser.rs) in grammar, leniency and error messages:
//
//   start: begin_patch hunk+ end_patch
//   begin_patch: "*** Begin Patch" LF
//   end_patch: "*** End Patch" LF?
//   hunk: add_hunk | delete_hunk | update_hunk
//   add_hunk: "*** Add File: " filename LF add_line+
//   delete_hunk: "*** Delete File: " filename LF
//   update_hunk: "*** Update File: " filename LF change_move? change?
//   add_line: "+" /(.+)/ LF
//   change_move: "*** Move to: " filename LF
//   change: (change_context | change_line)+ eof_line?
//   change_context: ("@@" | "@@ " /(.+)/) LF
//   change_line: ("+" | "-" | " ") /(.+)/ LF
//   eof_line: "*** End of File" LF
//
// Leniency, as in the reference: the patch and its begin/end and hunk-header lines may carry
// surrounding whitespace, CRLF line breaks are accepted, the whole patch may be wrapped in a
// `<<EOF` … `EOF` heredoc (models driving a shell tool produce that), the first chunk of an update
// may omit its `@@` line, and blank lines between an update header and its first chunk are
// skipped. Zero hunks parse; the applier refuses them.

import { ApplyPatchError } from './errors.js';
import { trim } from './whitespace.js';

const BEGIN_PATCH_MARKER = '*** Begin Patch';
const END_PATCH_MARKER = '*** End Patch';
const ADD_FILE_MARKER = '*** Add File: ';
const DELETE_FILE_MARKER = '*** Delete File: ';
const UPDATE_FILE_MARKER = '*** Update File: ';
const MOVE_TO_MARKER = '*** Move to: ';
const EOF_MARKER = '*** End of File';
const CHANGE_CONTEXT_MARKER = '@@ ';
const EMPTY_CHANGE_CONTEXT_MARKER = '@@';
const HEREDOC_OPENERS: readonly string[] = ['<<EOF', "<<'EOF'", '<<"EOF"'];

/** One `@@` section of an update: old lines to find, the lines that replace them. */
export interface UpdateFileChunk {
  /** Text after `@@ `: a line (usually a class or function header) to find before `oldLines`. */
  changeContext?: string;
  /** Lines that must be in the file (context and removed lines, in order). */
  oldLines: string[];
  /** Lines that replace `oldLines` (context and added lines, in order). */
  newLines: string[];
  /**
   * `[oldIndex, newIndex]` of each context line. The applier keeps those file lines as they are
   * (text and line ending), so a whitespace-fuzzy match never rewrites context.
   */
  contextLineIndices: [number, number][];
  /** `*** End of File`: `oldLines` must be at the end of the file. */
  isEndOfFile: boolean;
}

/** One file operation of a patch. Paths are as written, not yet checked. */
export type Hunk =
  | { type: 'add'; path: string; contents: string }
  | { type: 'delete'; path: string }
  | { type: 'update'; path: string; movePath?: string; chunks: UpdateFileChunk[] };

export interface ParsedPatch {
  hunks: Hunk[];
  /** The patch from `*** Begin Patch` to `*** End Patch`, without a heredoc wrapper. */
  patch: string;
}

function invalidPatch(message: string): ApplyPatchError {
  return new ApplyPatchError('invalid_patch', `Invalid patch: ${message}`);
}

function invalidHunk(message: string, lineNumber: number): ApplyPatchError {
  return new ApplyPatchError(
    'invalid_hunk',
    `Invalid patch hunk on line ${lineNumber}: ${message}`,
    {
      lineNumber,
    },
  );
}

/**
 * Parses a patch into hunks without touching any file.
 * @throws {ApplyPatchError} `invalid_patch` or `invalid_hunk`, with the reference's message.
 */
export function parsePatch(text: string): ParsedPatch {
  const patchLines = checkBoundaries(splitLines(trim(text)));
  const hunkLines = patchLines.slice(1, -1);
  const hunks: Hunk[] = [];
  // Line 1 is `*** Begin Patch`; line numbers in errors count from there.
  let lineNumber = 2;
  let index = 0;
  while (index < hunkLines.length) {
    const [hunk, consumed] = parseOneHunk(hunkLines, index, lineNumber);
    hunks.push(hunk);
    lineNumber += consumed;
    index += consumed;
  }
  return { hunks, patch: patchLines.join('\n') };
}

/** Rust's `str::lines`: split on LF, drop one CR before it. */
function splitLines(text: string): string[] {
  if (text === '') return [];
  return text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
}

function checkBoundaries(lines: string[]): string[] {
  const strictError = checkBoundariesStrict(lines);
  if (strictError === undefined) return lines;
  const first = lines[0];
  const last = lines[lines.length - 1];
  if (
    lines.length >= 4 &&
    first !== undefined &&
    last !== undefined &&
    HEREDOC_OPENERS.includes(first) &&
    last.endsWith('EOF')
  ) {
    const inner = lines.slice(1, -1);
    const innerError = checkBoundariesStrict(inner);
    if (innerError !== undefined) throw innerError;
    return inner;
  }
  throw strictError;
}

function checkBoundariesStrict(lines: string[]): ApplyPatchError | undefined {
  const first = lines[0] === undefined ? undefined : trim(lines[0]);
  const lastLine = lines[lines.length - 1];
  const last = lastLine === undefined ? undefined : trim(lastLine);
  if (lines.length >= 2 && first === BEGIN_PATCH_MARKER && last === END_PATCH_MARKER) {
    return undefined;
  }
  if (first !== undefined && first !== BEGIN_PATCH_MARKER) {
    return invalidPatch("The first line of the patch must be '*** Begin Patch'");
  }
  return invalidPatch("The last line of the patch must be '*** End Patch'");
}

function parseOneHunk(lines: string[], start: number, lineNumber: number): [Hunk, number] {
  // Hunk headers tolerate surrounding whitespace; `*** Move to:` and chunk lines do not, as in
  // the reference.
  const firstLine = trim(lines[start] ?? '');

  if (firstLine.startsWith(ADD_FILE_MARKER)) {
    let contents = '';
    let consumed = 1;
    for (let i = start + 1; i < lines.length; i++) {
      const line = lines[i] ?? '';
      if (!line.startsWith('+')) break;
      contents += `${line.slice(1)}\n`;
      consumed++;
    }
    return [{ type: 'add', path: firstLine.slice(ADD_FILE_MARKER.length), contents }, consumed];
  }

  if (firstLine.startsWith(DELETE_FILE_MARKER)) {
    return [{ type: 'delete', path: firstLine.slice(DELETE_FILE_MARKER.length) }, 1];
  }

  if (firstLine.startsWith(UPDATE_FILE_MARKER)) {
    const path = firstLine.slice(UPDATE_FILE_MARKER.length);
    let index = start + 1;
    let consumed = 1;
    let movePath: string | undefined;
    const moveLine = lines[index];
    if (moveLine?.startsWith(MOVE_TO_MARKER)) {
      movePath = moveLine.slice(MOVE_TO_MARKER.length);
      index++;
      consumed++;
    }
    const chunks: UpdateFileChunk[] = [];
    while (index < lines.length) {
      const line = lines[index] ?? '';
      if (trim(line) === '') {
        index++;
        consumed++;
        continue;
      }
      // The next hunk header (or a stray marker, reported as a bad header by the caller).
      if (line.startsWith('*')) break;
      const [chunk, chunkLines] = parseUpdateFileChunk(
        lines,
        index,
        lineNumber + consumed,
        chunks.length === 0,
      );
      chunks.push(chunk);
      index += chunkLines;
      consumed += chunkLines;
    }
    if (chunks.length === 0) {
      throw invalidHunk(`Update file hunk for path '${path}' is empty`, lineNumber);
    }
    const hunk: Hunk =
      movePath === undefined
        ? { type: 'update', path, chunks }
        : { type: 'update', path, movePath, chunks };
    return [hunk, consumed];
  }

  throw invalidHunk(
    `'${firstLine}' is not a valid hunk header. Valid hunk headers: '*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'`,
    lineNumber,
  );
}

function parseUpdateFileChunk(
  lines: string[],
  start: number,
  lineNumber: number,
  allowMissingContext: boolean,
): [UpdateFileChunk, number] {
  const header = lines[start] ?? '';
  const chunk: UpdateFileChunk = {
    oldLines: [],
    newLines: [],
    contextLineIndices: [],
    isEndOfFile: false,
  };
  let bodyStart: number;
  if (header === EMPTY_CHANGE_CONTEXT_MARKER) {
    bodyStart = 1;
  } else if (header.startsWith(CHANGE_CONTEXT_MARKER)) {
    chunk.changeContext = header.slice(CHANGE_CONTEXT_MARKER.length);
    bodyStart = 1;
  } else if (allowMissingContext) {
    bodyStart = 0;
  } else {
    throw invalidHunk(
      `Expected update hunk to start with a @@ context marker, got: '${header}'`,
      lineNumber,
    );
  }
  if (start + bodyStart >= lines.length) {
    throw invalidHunk('Update hunk does not contain any lines', lineNumber + 1);
  }

  let parsed = 0;
  for (let i = start + bodyStart; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line === EOF_MARKER) {
      if (parsed === 0) {
        throw invalidHunk('Update hunk does not contain any lines', lineNumber + 1);
      }
      chunk.isEndOfFile = true;
      parsed++;
      break;
    }
    const marker = line[0];
    if (marker === undefined || marker === ' ') {
      // An empty line is an empty context line: editors and models strip the lone space.
      const text = line.slice(1);
      chunk.contextLineIndices.push([chunk.oldLines.length, chunk.newLines.length]);
      chunk.oldLines.push(text);
      chunk.newLines.push(text);
    } else if (marker === '+') {
      chunk.newLines.push(line.slice(1));
    } else if (marker === '-') {
      chunk.oldLines.push(line.slice(1));
    } else {
      if (parsed === 0) {
        throw invalidHunk(
          `Unexpected line found in update hunk: '${line}'. Every line should start with ' ' (context line), '+' (added line), or '-' (removed line)`,
          lineNumber + 1,
        );
      }
      // Anything else starts the next chunk (`@@`) or the next hunk (`***`).
      break;
    }
    parsed++;
  }
  return [chunk, parsed + bodyStart];
}
