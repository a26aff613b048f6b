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
 */
export async function collectPatch(
  sandbox: Sandbox,
  base: string,
  options: { maxBytes: number; signal: AbortSignal },
): Promise<CollectedPatch> {
  const diff = `${GIT} diff --cached --binary --no-color --no-ext-diff --no-textconv -M ${base}`;
  const script = [
    'set -e',
    'mkdir -p /tmp/.patchbay',
    `${GIT} add -A -- .`,
    `${diff} > ${PATCH_FILE}`,
    `stat -c %s ${PATCH_FILE}`,
  ].join('\n');
  const made = await sandbox.exec(['bash', '-c', script], {
    timeoutMs: 300_000,
    signal: options.signal,
    maxOutputBytes: 64 * 1024,
  });
  if (made.exitCode !== 0) {
    throw new PatchbayError(
      'sandbox_error',
      `collecting the patch failed: ${made.output.toString('utf8').slice(-2000)}`,
    );
  }
  const size = Number(made.output.toString('utf8').trim().split('\n').at(-1));
  if (!Number.isSafeInteger(size))
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

  const stats = await sandbox.exec(
    [
      'bash',
      '-c',
      `${diff.replace('--binary ', '')} --numstat -z && printf '\\0--\\0' && ${diff.replace('--binary ', '')} --name-status -z`,
    ],
    { timeoutMs: 120_000, signal: options.signal, maxOutputBytes: 32 * 1024 * 1024 },
  );
  if (stats.exitCode !== 0 || stats.droppedBytes > 0) {
    throw new PatchbayError('sandbox_error', 'listing the changed files failed');
  }
  const [numstat = '', nameStatus = ''] = stats.output.toString('utf8').split('\0--\0');
  const files = parseChanges(numstat, nameStatus);
  return {
    patch,
    files,
    additions: files.reduce((sum, f) => sum + f.additions, 0),
    deletions: files.reduce((sum, f) => sum + f.deletions, 0),
  };
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
