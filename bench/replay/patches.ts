/**
 * An upstream change as the replay's oracle model hands it to the agent: a git diff split per
 * file, told apart into tests and the rest, and rewritten in the `apply_patch` format the agent's
 * own tool takes. Only what that format can say is accepted (added, deleted and changed text
 * files); anything else is refused with the reason, so an instance that needs it is never made.
 */

/** One file of a git diff. */
export interface FileDiff {
  /** The path before the change; null for an added file. */
  oldPath: string | null;
  /** The path after the change; null for a deleted file. */
  newPath: string | null;
  hunks: Hunk[];
}

export interface Hunk {
  /** The hunk's lines, each with its ` `, `-` or `+` prefix. */
  lines: string[];
  /** It reaches the end of the file (less trailing context than the diff was made with). */
  atEnd: boolean;
}

/** Lines of context of the diffs taken (git's default, `-U3`). */
const CONTEXT = 3;

/** Why a diff cannot be replayed through `apply_patch`. */
export class UnsupportedDiff extends Error {
  override readonly name = 'UnsupportedDiff';
}

const HUNK = /^@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@/;

/**
 * Splits the output of `git diff --no-renames --no-color --no-ext-diff` (three lines of context,
 * the default) into files. Renames must come as a delete and an add (`--no-renames`):
 * `apply_patch` cannot move a file unchanged.
 */
export function parseGitDiff(diff: string): FileDiff[] {
  const sections = diff.split(/^(?=diff --git )/m).filter((s) => s.startsWith('diff --git '));
  return sections.map(parseSection);
}

function parseSection(text: string): FileDiff {
  const lines = text.replace(/\n$/, '').split('\n');
  const header = lines[0] ?? '';
  let oldPath: string | null | undefined;
  let newPath: string | null | undefined;
  const hunks: Hunk[] = [];
  let i = 1;
  for (; i < lines.length && !lines[i]!.startsWith('@@'); i++) {
    const line = lines[i]!;
    if (line.startsWith('Binary files ') || line === 'GIT binary patch')
      throw new UnsupportedDiff(`${header}: a binary file`);
    if (line.startsWith('rename from ') || line.startsWith('copy from '))
      throw new UnsupportedDiff(`${header}: a rename or copy (diff with --no-renames)`);
    if (line.startsWith('--- ')) oldPath = diffPath(line.slice(4), 'a/', header);
    if (line.startsWith('+++ ')) newPath = diffPath(line.slice(4), 'b/', header);
  }
  if (oldPath === undefined || newPath === undefined)
    throw new UnsupportedDiff(`${header}: no content change (a mode change or an empty file)`);
  if (oldPath !== null && newPath !== null && oldPath !== newPath)
    throw new UnsupportedDiff(`${header}: the file changes its name`);
  for (; i < lines.length; i++) {
    const line = lines[i]!;
    if (HUNK.test(line)) {
      hunks.push({ lines: [], atEnd: false });
      continue;
    }
    if (line.startsWith('\\'))
      throw new UnsupportedDiff(`${header}: a file without a newline at its end`);
    const current = hunks.at(-1);
    if (current === undefined || !/^[ +-]/.test(line))
      throw new UnsupportedDiff(`${header}: a line the diff format does not have: ${line}`);
    current.lines.push(line);
  }
  for (const hunk of hunks) {
    const trailing = hunk.lines.length - 1 - hunk.lines.findLastIndex((l) => !l.startsWith(' '));
    hunk.atEnd = trailing < CONTEXT;
  }
  return { oldPath, newPath, hunks };
}

/** `a/path`, `b/path` or `/dev/null`; quoted (unusual) paths are refused. */
function diffPath(raw: string, prefix: string, header: string): string | null {
  const path = raw.replace(/\t.*$/, '');
  if (path === '/dev/null') return null;
  if (path.startsWith('"')) throw new UnsupportedDiff(`${header}: a path git had to quote`);
  if (!path.startsWith(prefix)) throw new UnsupportedDiff(`${header}: an unexpected path ${raw}`);
  return path.slice(prefix.length);
}

/** The path a file diff is about: its new path, or its old one for a deleted file. */
export function pathOf(file: FileDiff): string {
  return (file.newPath ?? file.oldPath)!;
}

/**
 * A test file by the usual conventions of JavaScript projects: under a `test`, `tests`,
 * `__tests__` or `spec` directory, or named `*.test.*` / `*.spec.*`.
 */
export function isTestPath(path: string): boolean {
  const parts = path.split('/');
  const name = parts.at(-1) ?? '';
  return (
    parts.slice(0, -1).some((d) => /^(test|tests|__tests__|spec|specs)$/.test(d)) ||
    /\.(test|spec)\.[cm]?[jt]sx?$/.test(name)
  );
}

/** The files of a diff in the `apply_patch` format, one patch for all of them. */
export function toApplyPatch(files: readonly FileDiff[]): string {
  const out = ['*** Begin Patch'];
  for (const file of files) {
    if (file.oldPath === null) {
      out.push(`*** Add File: ${file.newPath}`);
      for (const line of file.hunks.flatMap((h) => h.lines)) {
        if (!line.startsWith('+'))
          throw new UnsupportedDiff(`${file.newPath}: an added file with a line it did not add`);
        out.push(line);
      }
    } else if (file.newPath === null) {
      out.push(`*** Delete File: ${file.oldPath}`);
    } else {
      out.push(`*** Update File: ${file.oldPath}`);
      // A hunk at the end of the file is anchored there: its context (a closing brace or two)
      // is often found earlier in the file too.
      for (const hunk of file.hunks)
        out.push('@@', ...hunk.lines, ...(hunk.atEnd ? ['*** End of File'] : []));
    }
  }
  out.push('*** End Patch');
  return `${out.join('\n')}\n`;
}
