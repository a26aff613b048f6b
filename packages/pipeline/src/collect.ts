import { type FileChange, PatchbayError } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

const PATCH_FILE = '/tmp/.patchbay/patch.diff';

/** git inside the sandbox with nothing of the repository's able to run: no hooks, no drivers. */
const GIT =
  'git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c diff.external= -c core.quotePath=false';

export interface CollectedPatch {
  patch: Buffer;
  files: FileChange[];
  additions: number;
  deletions: number;
}

/**
 * The agent's changes as `git diff --binary <base>` of the whole working tree (new files
 * included, ignored files not), computed inside the sandbox and treated as untrusted bytes.
 *
 * One exec stages everything, writes the patch to a file, prints its size and then the file list
 * (`--raw --numstat -z`, one diff pass for both); a second round trip reads the patch. Fewer
 * execs and diff passes matter for a patch of many files (bench/RESULTS.md, patch collection).
 */
export async function collectPatch(
  sandbox: Sandbox,
  base: string,
  options: { maxBytes: number; signal: AbortSignal },
): Promise<CollectedPatch> {
  const diff = `${GIT} diff --cached --no-color --no-ext-diff --no-textconv -M`;
  const script = [
    'set -e',
    'mkdir -p /tmp/.patchbay',
    // git warns on stderr (a repository's `.gitattributes` asking for CRLF makes `git add` warn
    // about every file), and the exec channel interleaves stderr with the stdout parsed below:
    // keep warnings out of it, and show them only when a step fails.
    'exec 2>/tmp/.patchbay/collect.err',
    "trap 'cat /tmp/.patchbay/collect.err' ERR",
    `${GIT} add -A -- .`,
    `${diff} --binary ${base} > ${PATCH_FILE}`,
    `stat -c %s ${PATCH_FILE}`,
    `${diff} --raw --numstat -z ${base}`,
  ].join('\n');
  const made = await sandbox.exec(['bash', '-c', script], {
    timeoutMs: 300_000,
    signal: options.signal,
    maxOutputBytes: 32 * 1024 * 1024,
  });
  const output = made.output.toString('utf8');
  if (made.exitCode !== 0) {
    throw new PatchbayError('sandbox_error', `collecting the patch failed: ${output.slice(-2000)}`);
  }
  if (made.droppedBytes > 0) {
    throw new PatchbayError('sandbox_error', 'listing the changed files failed');
  }
  const newline = output.indexOf('\n');
  const size = Number(output.slice(0, newline));
  if (newline < 0 || !Number.isSafeInteger(size))
    throw new PatchbayError('sandbox_error', 'collecting the patch gave no size');
  if (size > options.maxBytes) {
    throw new PatchbayError(
      'patch_too_large',
      `the patch is ${size} bytes, more than the ${options.maxBytes} allowed`,
      {
        details: { bytes: size, maxBytes: options.maxBytes },
      },
    );
  }
  const patch =
    size === 0
      ? Buffer.alloc(0)
      : await sandbox.readFile(PATCH_FILE, { maxBytes: options.maxBytes, signal: options.signal });

  const { nameStatus, numstat } = splitRawNumstat(output.slice(newline + 1));
  const files = parseChanges(numstat, nameStatus);
  return {
    patch,
    files,
    additions: files.reduce((sum, f) => sum + f.additions, 0),
    deletions: files.reduce((sum, f) => sum + f.deletions, 0),
  };
}

/**
 * Splits `git diff --raw --numstat -z` output into what `--name-status -z` and `--numstat -z`
 * would print. Raw records come first, each `:<modes> <oids> <status>\0<path>\0` (two paths for
 * a rename or copy); the numstat part starts at the first record not opening with `:`.
 */
export function splitRawNumstat(output: string): { nameStatus: string; numstat: string } {
  const tokens = output.split('\0');
  const nameStatus: string[] = [];
  let i = 0;
  while (i < tokens.length && tokens[i]!.startsWith(':')) {
    const status = tokens[i]!.split(' ').at(-1) ?? '';
    const paths = status.startsWith('R') || status.startsWith('C') ? 2 : 1;
    nameStatus.push(status, ...tokens.slice(i + 1, i + 1 + paths));
    i += 1 + paths;
  }
  return { nameStatus: nameStatus.join('\0'), numstat: tokens.slice(i).join('\0') };
}

const STATUS: Record<string, FileChange['status']> = {
  A: 'added',
  M: 'modified',
  D: 'deleted',
  R: 'renamed',
  C: 'copied',
  T: 'type_changed',
};

/**
 * Parses `--numstat -z` and `--name-status -z` output. With -z, a rename is
 * `R100\0old\0new\0` in name-status and `adds\tdels\t\0old\0new\0` in numstat.
 */
export function parseChanges(numstat: string, nameStatus: string): FileChange[] {
  const counts = new Map<string, { additions: number; deletions: number; binary: boolean }>();
  const ns = numstat.split('\0');
  for (let i = 0; i < ns.length; i++) {
    const entry = ns[i];
    if (!entry) continue;
    const [adds = '', dels = '', path = ''] = entry.split('\t');
    const binary = adds === '-';
    const target = path === '' ? ns[(i += 2)] : path;
    if (target === undefined) break;
    counts.set(target, {
      additions: binary ? 0 : Number(adds),
      deletions: binary ? 0 : Number(dels),
      binary,
    });
  }
  const files: FileChange[] = [];
  const st = nameStatus.split('\0');
  for (let i = 0; i < st.length; i++) {
    const code = st[i];
    if (!code) continue;
    const kind = STATUS[code[0]!] ?? 'modified';
    const renamed = kind === 'renamed' || kind === 'copied';
    const oldPath = renamed ? st[++i] : undefined;
    const path = st[++i];
    if (path === undefined) break;
    const count = counts.get(path) ?? { additions: 0, deletions: 0, binary: false };
    files.push({
      path,
      ...(oldPath === undefined ? {} : { oldPath }),
      status: kind,
      additions: count.additions,
      deletions: count.deletions,
      ...(count.binary ? { binary: true } : {}),
    });
  }
  return files;
}
