import { parse } from 'diff2html/lib-esm/diff-parser.js';

export type LineType = 'context' | 'insert' | 'delete';

export interface DiffLine {
  type: LineType;
  oldNumber: number | null;
  newNumber: number | null;
  /** The line without its `+`/`-`/space prefix. */
  text: string;
}

export interface DiffHunk {
  header: string;
  lines: DiffLine[];
}

export interface DiffFile {
  /** The path after the change (before it, for a deleted file). */
  path: string;
  /** The path before a rename or copy; null otherwise. */
  oldPath: string | null;
  status: 'added' | 'deleted' | 'renamed' | 'copied' | 'modified';
  additions: number;
  deletions: number;
  /** A binary file: the patch carries its bytes, there are no lines to show. */
  binary: boolean;
  /** A file mode change (e.g. made executable), when there is one. */
  modeChange: string | null;
  hunks: DiffHunk[];
}

const NULL_PATH = '/dev/null';

/** A `git diff --binary` patch as files, hunks and numbered lines. */
export function parsePatch(patch: string): DiffFile[] {
  if (patch.trim() === '') return [];
  return parse(patch).map((file) => {
    const added = !!file.isNew || file.oldName === NULL_PATH;
    const deleted = !!file.isDeleted || file.newName === NULL_PATH;
    const path = deleted ? file.oldName : file.newName;
    const moved = (!!file.isRename || !!file.isCopy) && file.oldName !== file.newName;
    const hunks = file.blocks.map((block) => ({
      header: block.header,
      lines: block.lines
        .filter((line) => !line.content.startsWith('\\'))
        .map((line) => ({
          type: line.type,
          oldNumber: line.oldNumber ?? null,
          newNumber: line.newNumber ?? null,
          text: line.content.slice(1),
        })),
    }));
    const oldMode = Array.isArray(file.oldMode) ? file.oldMode[0] : file.oldMode;
    return {
      path,
      oldPath: moved ? file.oldName : null,
      status: added
        ? 'added'
        : deleted
          ? 'deleted'
          : moved
            ? file.isCopy
              ? 'copied'
              : 'renamed'
            : 'modified',
      additions: file.addedLines,
      deletions: file.deletedLines,
      binary: !!file.isBinary,
      modeChange:
        oldMode && file.newMode && oldMode !== file.newMode ? `${oldMode} → ${file.newMode}` : null,
      hunks: file.isBinary ? [] : hunks,
    };
  });
}

/** One row of the side-by-side view: the old line left, the new line right. */
export interface SplitRow {
  left: DiffLine | null;
  right: DiffLine | null;
}

/**
 * A hunk's lines side by side: context on both sides; a run of deletions paired with the run
 * of insertions that follows it, line for line, the longer run's rest against blanks.
 */
export function splitRows(hunk: DiffHunk): SplitRow[] {
  const rows: SplitRow[] = [];
  const lines = hunk.lines;
  let i = 0;
  while (i < lines.length) {
    const line = lines[i]!;
    if (line.type === 'context') {
      rows.push({ left: line, right: line });
      i++;
      continue;
    }
    const deletions: DiffLine[] = [];
    const insertions: DiffLine[] = [];
    while (i < lines.length && lines[i]!.type === 'delete') deletions.push(lines[i++]!);
    while (i < lines.length && lines[i]!.type === 'insert') insertions.push(lines[i++]!);
    for (let k = 0; k < Math.max(deletions.length, insertions.length); k++)
      rows.push({ left: deletions[k] ?? null, right: insertions[k] ?? null });
  }
  return rows;
}
