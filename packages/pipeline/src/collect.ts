import { type FileChange, PatchbayError } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

/**
 * Patchbay's own scratch space in the sandbox (a tmpfs of its own, see the Docker driver), so that
 * a full /tmp, home or workspace cannot stop the collection. Emptied before each use: nothing of
 * the agent's belongs there.
 */
const SCRATCH_DIR = '/run/patchbay';
const DIR = `${SCRATCH_DIR}/collect`;
const PATCH_FILE = `${DIR}/patch.diff`;
const CHANGES_FILE = `${DIR}/changes.diff`;
const PREVIOUS_FILE = `${DIR}/previous.diff`;
/** Where a pristine copy of the base's objects goes when the agent damaged its `.git`. */
const BASE_DIR = `${DIR}/base`;
/** Exit code of the collect script when the workspace's object store cannot give the base. */
const BASE_UNREADABLE = 3;

/** Puts the repository at the base commit (its `.git` with the objects) into `path`. */
export type BaseRestorer = (sandbox: Sandbox, path: string, signal: AbortSignal) => Promise<void>;

export interface CollectOptions {
  maxBytes: number;
  signal: AbortSignal;
  /**
   * Used when the workspace's `.git` no longer holds the base commit's objects (the agent
   * deleted or broke them). Without it, such a workspace fails the collection with a clear error.
   */
  restoreBase?: BaseRestorer;
}

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
 * Whatever state the agent left the container in, the collection must not lose its work:
 * - every process the agent left running is killed first ({@link Sandbox.quiesce}), so a full
 *   process table or a runaway job cannot stop the commands below;
 * - nothing of the agent's git setup is trusted: the diff comes from a git directory of
 *   Patchbay's own in the scratch tmpfs (its own config and a pristine index read from the base
 *   tree), which borrows the workspace's objects through `alternates`; the agent's `.git/config`,
 *   `.git/index` (with its skip-worktree or assume-unchanged bits), hooks and `~/.gitconfig`
 *   play no part. When the workspace's objects cannot give the base (the agent deleted or
 *   damaged them), `restoreBase` brings a pristine copy and the collection runs again;
 * - files and directories the agent made unreadable to itself are made readable (their mode as
 *   git records it, the executable bit, does not change);
 * - only the scratch tmpfs is written, so a full workspace, /tmp or home does not matter.
 *
 * One exec prepares, stages, writes the patch (cut one byte past the cap), prints its size and
 * then the file list (`--raw --numstat -z`, one diff pass for both); a second round trip reads the
 * patch (bench/RESULTS.md, patch collection).
 */
export async function collectPatch(
  sandbox: Sandbox,
  base: string,
  options: CollectOptions,
): Promise<CollectedPatch> {
  await sandbox.quiesce();
  let made = await runCollect(sandbox, base, options, false);
  if (made.exitCode === BASE_UNREADABLE) {
    if (options.restoreBase === undefined) throw baseUnreadable(made.output);
    await options.restoreBase(sandbox, BASE_DIR, options.signal);
    made = await runCollect(sandbox, base, options, true);
    if (made.exitCode === BASE_UNREADABLE) throw baseUnreadable(made.output);
  }
  return readCollected(sandbox, made, PATCH_FILE, options);
}

/**
 * What the current turn alone changed: the workspace as the collection just before staged it
 * (the same call must have run {@link collectPatch} first), against the base with `previous` (the
 * task's patch as the last turn left it) applied. Computed in the scratch the same way, so it is
 * the same whether the turn ran in a kept sandbox or a rebuilt one.
 */
export async function collectChanges(
  sandbox: Sandbox,
  base: string,
  previous: Buffer,
  options: Omit<CollectOptions, 'restoreBase'>,
): Promise<CollectedPatch> {
  checkBase(base);
  await sandbox.writeFile(PREVIOUS_FILE, previous, { signal: options.signal });
  const script = [
    'set -e',
    `exec 2>${DIR}/err`,
    `trap 'cat ${DIR}/err' ERR`,
    ...GIT_ENV,
    `export GIT_INDEX_FILE=${DIR}/previous-index`,
    `${GIT} read-tree ${base}`,
    `if [ -s ${PREVIOUS_FILE} ]; then ${GIT} apply --cached --binary ${PREVIOUS_FILE}; fi`,
    `previous=$(${GIT} write-tree)`,
    `export GIT_INDEX_FILE=${DIR}/index`,
    'cd /workspace',
    ...diffLines('"$previous"', CHANGES_FILE, options.maxBytes),
  ].join('\n');
  const made = await sandbox.exec(['bash', '-c', script], {
    timeoutMs: 300_000,
    signal: options.signal,
    maxOutputBytes: 32 * 1024 * 1024,
  });
  return readCollected(sandbox, made, CHANGES_FILE, options);
}

/**
 * Puts the workspace back to what the last collection staged: files changed or deleted since
 * (by verify, say) are written again from the staged index, and files that appeared since and
 * are not ignored are removed. A kept sandbox starts its next turn from exactly the tree the
 * collected patch describes, as a rebuilt one does.
 */
export async function resetToCollected(sandbox: Sandbox, signal: AbortSignal): Promise<void> {
  const script = [
    'set -e',
    `test -f ${DIR}/index -a -d ${DIR}/git`,
    ...GIT_ENV,
    `export GIT_INDEX_FILE=${DIR}/index`,
    'cd /workspace',
    `${GIT} ls-files -z -m -d | xargs -0 -r ${GIT} checkout-index -f -q --`,
    `${GIT} clean -f -d -q`,
  ].join('\n');
  const reset = await sandbox.exec(['bash', '-c', script], { timeoutMs: 300_000, signal });
  if (reset.exitCode !== 0) {
    throw new PatchbayError(
      'sandbox_error',
      `the workspace could not be put back to the collected tree: ${reset.output.toString('utf8').slice(-1000)}`,
    );
  }
}

/** Reads what a collect script made: its size line, the patch file, the file list. */
async function readCollected(
  sandbox: Sandbox,
  made: { exitCode: number | null; output: Buffer; droppedBytes: number },
  file: string,
  options: { maxBytes: number; signal: AbortSignal },
): Promise<CollectedPatch> {
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
      `the patch is more than the ${options.maxBytes} bytes allowed`,
      { details: { maxBytes: options.maxBytes } },
    );
  }
  const patch =
    size === 0
      ? Buffer.alloc(0)
      : await sandbox.readFile(file, { maxBytes: options.maxBytes, signal: options.signal });

  const { nameStatus, numstat } = splitRawNumstat(output.slice(newline + 1));
  const files = parseChanges(numstat, nameStatus);
  return {
    patch,
    files,
    additions: files.reduce((sum, f) => sum + f.additions, 0),
    deletions: files.reduce((sum, f) => sum + f.deletions, 0),
  };
}

function baseUnreadable(output: Buffer): PatchbayError {
  return new PatchbayError(
    'sandbox_error',
    `the base commit could not be read to collect the patch: ${output.toString('utf8').slice(-1000)}`,
    { details: { reason: 'base_unreadable' } },
  );
}

/** git with nothing of the repository's able to run: no hooks, no drivers, no fsmonitor. */
const GIT =
  'git -c core.hooksPath=/dev/null -c core.fsmonitor=false -c diff.external= -c core.quotePath=false';

/** The environment of every git command on the scratch git dir: nothing of the agent's. */
const GIT_ENV = [
  `export GIT_DIR=${DIR}/git GIT_WORK_TREE=/workspace`,
  'export GIT_CONFIG_GLOBAL=/dev/null GIT_NO_REPLACE_OBJECTS=1 GIT_OPTIONAL_LOCKS=0',
  'unset GIT_OBJECT_DIRECTORY GIT_ALTERNATE_OBJECT_DIRECTORIES GIT_COMMON_DIR GIT_NAMESPACE',
];

/**
 * Script lines writing the staged tree's diff against `from` to `file`, cut one byte past the cap
 * (a larger patch is refused, and must not fill the scratch first), then printing its size and
 * the file list.
 */
function diffLines(from: string, file: string, maxBytes: number): string[] {
  const diff = `${GIT} diff --cached --no-color --no-ext-diff --no-textconv -M`;
  return [
    'set +e',
    `${diff} --binary ${from} | head -c ${maxBytes + 1} > ${file}`,
    'codes=("${PIPESTATUS[@]}")',
    'set -e',
    `if [ "\${codes[1]}" != 0 ] || { [ "\${codes[0]}" != 0 ] && [ "\${codes[0]}" != 141 ]; }; then cat ${DIR}/err; exit 1; fi`,
    `stat -c %s ${file}`,
    `${diff} --raw --numstat -z ${from}`,
  ];
}

function checkBase(base: string): void {
  if (!/^[0-9a-f]{40,64}$/.test(base)) throw new PatchbayError('internal_error', 'bad base commit');
}

async function runCollect(
  sandbox: Sandbox,
  base: string,
  options: CollectOptions,
  restored: boolean,
): Promise<{ exitCode: number | null; output: Buffer; droppedBytes: number }> {
  checkBase(base);
  const alternates = restored
    ? `${BASE_DIR}/.git/objects\n/workspace/.git/objects`
    : '/workspace/.git/objects';
  const script = [
    'set -e',
    // Clears what is there (the agent may have filled the scratch, or left a base of its own
    // making); only a base the worker itself just restored is kept.
    `mkdir -p ${DIR}`,
    `find ${DIR} -mindepth 1 -maxdepth 1 ${restored ? '! -name base ' : ''}-exec rm -rf {} +`,
    `mkdir -p ${DIR}/git/objects/info ${DIR}/git/refs`,
    // git warns on stderr (a repository's `.gitattributes` asking for CRLF makes `git add` warn
    // about every file), and the exec channel interleaves stderr with the stdout parsed below:
    // keep warnings out of it, and show them only when a step fails.
    `exec 2>${DIR}/err`,
    `trap 'cat ${DIR}/err' ERR`,
    `printf '${alternates}\n' > ${DIR}/git/objects/info/alternates`,
    `printf 'ref: refs/heads/patchbay\n' > ${DIR}/git/HEAD`,
    `printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' > ${DIR}/git/config`,
    ...GIT_ENV,
    `export GIT_INDEX_FILE=${DIR}/index`,
    // Directories the agent cannot list and files it cannot read; find acts on a directory
    // before it descends into it.
    'find /workspace -xdev \\( -type d ! -perm -u=rx -exec chmod u+rx {} \\; \\) -o \\( -type f ! -perm -u=r -exec chmod u+r {} \\; \\) || true',
    `if ! ${GIT} read-tree ${base} 2>>${DIR}/err; then cat ${DIR}/err; exit ${BASE_UNREADABLE}; fi`,
    'cd /workspace',
    `${GIT} add -A -- .`,
    ...diffLines(base, PATCH_FILE, options.maxBytes),
  ].join('\n');
  return sandbox.exec(['bash', '-c', script], {
    timeoutMs: 300_000,
    signal: options.signal,
    maxOutputBytes: 32 * 1024 * 1024,
  });
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
