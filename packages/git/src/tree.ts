import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { PatchbayError } from '@patchbay/core';
import type { Mirror } from './types.js';
import { refProblem } from './refs.js';
import { tail, type GitProcess } from './run-git.js';
import { END_OF_ARCHIVE, encodeHeader, padding, type TarEntry } from './tar.js';

export interface TreeExportOptions {
  /**
   * Owner of every entry in the archive.
   * @default 0
   */
  uid?: number;
  /** @default 0 */
  gid?: number;
  /**
   * Most bytes of file content the tree may hold; checked before the first byte is sent.
   * @default 4 GiB
   */
  maxBytes?: number;
  /**
   * Most entries (files, directories, symlinks) the tree may hold.
   * @default 1_000_000
   */
  maxEntries?: number;
  /**
   * Time limit of the export, from call to last byte (a consumer that stops reading counts).
   * @default 600_000
   */
  timeoutMs?: number;
  /** Aborting ends the stream with `cancelled`. */
  signal?: AbortSignal;
}

export interface WorkspaceExportOptions extends TreeExportOptions {
  /**
   * Branch that HEAD is on (`refs/heads/<branch>` at the commit). Omitted: a detached HEAD.
   * @default undefined (detached)
   */
  branch?: string;
}

/** One entry of `git ls-tree -r -t -z -l --full-tree`. */
interface TreeEntry {
  mode: string;
  type: 'blob' | 'tree' | 'commit';
  oid: string;
  size: number;
  path: Buffer;
}

interface CommitInfo {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch. */
  time: number;
}

interface Resolved {
  timeoutMs: number;
  maxBytes: number;
  maxEntries: number;
  uid: number;
  gid: number;
  signal: AbortSignal | undefined;
}

function resolveOptions(options: TreeExportOptions): Resolved {
  return {
    timeoutMs: options.timeoutMs ?? 600_000,
    maxBytes: options.maxBytes ?? 4 * 1024 ** 3,
    maxEntries: options.maxEntries ?? 1_000_000,
    uid: options.uid ?? 0,
    gid: options.gid ?? 0,
    signal: options.signal,
  };
}

/** Longest symlink target accepted (PATH_MAX); anything longer cannot be a working link. */
const MAX_SYMLINK_BYTES = 4095;

const callOptions = (mirror: Mirror, resolved: Resolved) => ({
  gitDir: mirror.gitDir,
  timeoutMs: resolved.timeoutMs,
  ...(resolved.signal ? { signal: resolved.signal } : {}),
});

async function readCommit(mirror: Mirror, sha: string, resolved: Resolved): Promise<CommitInfo> {
  if (!/^[0-9a-f]{40}$/.test(sha)) {
    throw new PatchbayError('validation_error', 'a commit sha must be 40 lower-case hex digits', {
      details: { reason: 'invalid_sha' },
    });
  }
  const result = await mirror.git.run(['cat-file', 'commit', sha], callOptions(mirror, resolved));
  if (result.exitCode !== 0) {
    throw new PatchbayError('ref_not_found', `commit ${sha} is not in the mirror`, {
      details: { ref: sha },
    });
  }
  const text = result.stdout.toString('latin1');
  const headerEnd = text.indexOf('\n\n');
  const header = headerEnd < 0 ? text : text.slice(0, headerEnd);
  const tree = /^tree ([0-9a-f]{40})$/m.exec(header)?.[1];
  const time = /^committer .* (\d+) [+-]\d{4}$/m.exec(header)?.[1];
  if (tree === undefined) throw new PatchbayError('internal_error', `commit ${sha} has no tree`);
  const parents = [...header.matchAll(/^parent ([0-9a-f]{40})$/gm)].map((m) => m[1]!);
  return { tree, parents, time: time === undefined ? 0 : Number(time) };
}

/**
 * A tree path git would refuse to check out is refused here too: the archive is extracted by
 * someone, and `..` or a `.git` component (any case) would let it write outside the workspace
 * or over the repository's own metadata.
 */
function unsafePath(path: Buffer): string | undefined {
  if (path.length === 0 || path.length > 4096) return 'empty or longer than 4096 bytes';
  for (const part of path.toString('latin1').split('/')) {
    if (part === '' || part === '.' || part === '..') return 'has an empty, "." or ".." component';
    if (part.toLowerCase() === '.git') return 'has a .git component';
    if (Buffer.byteLength(part, 'latin1') > 255) return 'has a component longer than 255 bytes';
  }
  return undefined;
}

async function listTree(mirror: Mirror, sha: string, resolved: Resolved): Promise<TreeEntry[]> {
  // Each line is small; this bounds memory at a few hundred bytes per entry.
  const maxStdoutBytes = Math.min(resolved.maxEntries * 400, 512 * 1024 ** 2);
  let result;
  try {
    result = await mirror.git.run(['ls-tree', '-r', '-t', '-z', '-l', '--full-tree', sha], {
      ...callOptions(mirror, resolved),
      maxStdoutBytes,
    });
  } catch (err) {
    if (err instanceof PatchbayError && err.code === 'repo_too_large')
      throw tooManyEntries(resolved);
    throw err;
  }
  if (result.exitCode !== 0) {
    throw new PatchbayError('internal_error', `git ls-tree failed: ${tail(result.stderr)}`);
  }
  const entries: TreeEntry[] = [];
  let total = 0;
  const out = result.stdout;
  for (let start = 0; start < out.length;) {
    let end = out.indexOf(0, start);
    if (end < 0) end = out.length;
    const record = out.subarray(start, end);
    start = end + 1;
    const tab = record.indexOf(9);
    const meta = /^(\d{6}) (blob|tree|commit) ([0-9a-f]{40}) +(-|\d+)$/.exec(
      record.subarray(0, tab).toString('latin1'),
    );
    if (tab < 0 || !meta)
      throw new PatchbayError('internal_error', 'unexpected git ls-tree output');
    const path = Buffer.from(record.subarray(tab + 1));
    const problem = unsafePath(path);
    if (problem !== undefined) {
      throw new PatchbayError(
        'policy_refused',
        `the repository has a path git refuses: it ${problem}`,
        {
          details: { reason: 'unsafe_path', path: path.toString('utf8').slice(0, 200) },
        },
      );
    }
    const entry: TreeEntry = {
      mode: meta[1]!,
      type: meta[2] as TreeEntry['type'],
      oid: meta[3]!,
      size: meta[4] === '-' ? 0 : Number(meta[4]),
      path,
    };
    if (entry.mode === '120000' && entry.size > MAX_SYMLINK_BYTES) {
      throw new PatchbayError(
        'policy_refused',
        'the repository has a symlink with an overlong target',
        {
          details: { reason: 'unsafe_path', path: path.toString('utf8').slice(0, 200) },
        },
      );
    }
    total += entry.size;
    entries.push(entry);
    if (entries.length > resolved.maxEntries) throw tooManyEntries(resolved);
  }
  if (total > resolved.maxBytes) {
    throw new PatchbayError(
      'repo_too_large',
      `the tree holds more than ${resolved.maxBytes} bytes`,
      {
        details: { bytes: total, maxBytes: resolved.maxBytes },
      },
    );
  }
  return entries;
}

function tooManyEntries(resolved: Resolved): PatchbayError {
  return new PatchbayError(
    'repo_too_large',
    `the tree has more than ${resolved.maxEntries} entries`,
    {
      details: { maxEntries: resolved.maxEntries },
    },
  );
}

/** Reads a byte stream as lines and exact-length runs (for `git cat-file --batch`). */
class ByteReader {
  private buffer: Buffer = Buffer.alloc(0);
  private readonly iterator: AsyncIterator<Buffer>;

  constructor(stream: Readable) {
    this.iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }

  private async more(): Promise<void> {
    const next = await this.iterator.next();
    if (next.done === true) throw new Error('git cat-file output ended early');
    this.buffer = this.buffer.length === 0 ? next.value : Buffer.concat([this.buffer, next.value]);
  }

  async line(): Promise<string> {
    for (;;) {
      const at = this.buffer.indexOf(10);
      if (at >= 0) {
        const line = this.buffer.subarray(0, at).toString('latin1');
        this.buffer = this.buffer.subarray(at + 1);
        return line;
      }
      if (this.buffer.length > 4096) throw new Error('unexpected git cat-file output');
      await this.more();
    }
  }

  /** Yields exactly `size` bytes, as they arrive. */
  async *take(size: number): AsyncGenerator<Buffer> {
    let left = size;
    while (left > 0) {
      if (this.buffer.length === 0) await this.more();
      const part = this.buffer.subarray(0, Math.min(left, this.buffer.length));
      this.buffer = this.buffer.subarray(part.length);
      left -= part.length;
      yield part;
    }
  }

  async read(size: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.take(size)) parts.push(part);
    return Buffer.concat(parts);
  }
}

/** Small pieces are gathered into blocks of this size before they are passed on. */
const BATCH_BYTES = 64 * 1024;

class Batcher {
  private parts: Buffer[] = [];
  private size = 0;

  *push(data: Buffer): Generator<Buffer> {
    if (data.length >= BATCH_BYTES / 4) {
      yield* this.flush();
      yield data;
      return;
    }
    this.parts.push(data);
    this.size += data.length;
    if (this.size >= BATCH_BYTES) yield* this.flush();
  }

  *flush(): Generator<Buffer> {
    if (this.size === 0 && this.parts.length === 0) return;
    const out = Buffer.concat(this.parts);
    this.parts = [];
    this.size = 0;
    yield out;
  }
}

function fileMode(gitMode: string): number {
  // Only the executable bit means anything in git; legacy modes such as 100664 normalise.
  return (Number.parseInt(gitMode, 8) & 0o111) !== 0 ? 0o755 : 0o644;
}

/**
 * The tree's entries as tar, content streamed from `git cat-file --batch` in the order the
 * entries come: directories, regular files (0644 / 0755 by the executable bit), symlinks as
 * symlinks (their target is data, never followed here) and submodules as empty directories —
 * exactly what a checkout makes, without ever writing any of it to the host's disk.
 */
async function* treeTar(
  mirror: Mirror,
  entries: readonly TreeEntry[],
  commit: CommitInfo,
  resolved: Resolved,
  batch: Batcher,
): AsyncGenerator<Buffer> {
  const blobs = entries.filter((e) => e.type === 'blob');
  if (blobs.length === 0) {
    for (const entry of entries) yield* batch.push(encodeHeader(dirEntry(entry, commit, resolved)));
    return;
  }
  const cat: GitProcess = mirror.git.spawn(['cat-file', '--batch', '--buffer'], {
    ...callOptions(mirror, resolved),
    stdin: blobs.map((e) => `${e.oid}\n`).join(''),
  });
  const reader = new ByteReader(cat.stdout);
  let finished = false;
  try {
    for (const entry of entries) {
      if (entry.type !== 'blob') {
        yield* batch.push(encodeHeader(dirEntry(entry, commit, resolved)));
        continue;
      }
      const header = await reader.line().catch((err: unknown) => failed(cat, err));
      const match = /^([0-9a-f]{40}) blob (\d+)$/.exec(header);
      if (!match || match[1] !== entry.oid) {
        throw new PatchbayError('internal_error', `object ${entry.oid} is missing from the mirror`);
      }
      const size = Number(match[2]);
      const base = {
        name: entry.path,
        mtime: commit.time,
        uid: resolved.uid,
        gid: resolved.gid,
      };
      if (entry.mode === '120000') {
        const target = await reader.read(size).catch((err: unknown) => failed(cat, err));
        yield* batch.push(
          encodeHeader({ ...base, type: 'symlink', mode: 0o777, size: 0, linkname: target }),
        );
      } else {
        yield* batch.push(
          encodeHeader({ ...base, type: 'file', mode: fileMode(entry.mode), size }),
        );
        try {
          for await (const part of reader.take(size)) yield* batch.push(part);
        } catch (err) {
          await failed(cat, err);
        }
        yield* batch.push(padding(size));
      }
      await reader.read(1).catch((err: unknown) => failed(cat, err)); // the newline after each object
    }
    const result = await cat.done;
    finished = true;
    if (result.exitCode !== 0) {
      throw new PatchbayError('internal_error', `git cat-file failed: ${tail(result.stderr)}`);
    }
  } finally {
    if (!finished) cat.kill();
  }
}

/** Turns a broken cat-file stream into the real reason: timeout, cancellation or git's error. */
async function failed(cat: GitProcess, err: unknown): Promise<never> {
  cat.kill();
  const result = await cat.done; // rejects with timeout / cancelled when that was the cause
  throw new PatchbayError(
    'internal_error',
    `reading objects failed: ${tail(result.stderr) || String(err)}`,
    {
      cause: err,
    },
  );
}

function dirEntry(entry: TreeEntry, commit: CommitInfo, resolved: Resolved): TarEntry {
  // Trees, and submodules (gitlinks), which a checkout without submodules leaves as empty dirs.
  return {
    name: entry.path,
    type: 'directory',
    mode: 0o755,
    size: 0,
    mtime: commit.time,
    uid: resolved.uid,
    gid: resolved.gid,
  };
}

/**
 * A Readable over an async generator of byte chunks, ended with a timeout and abort. `cleanup`
 * runs when the stream closes, read or not (a generator never started never runs its `finally`).
 */
function toReadable(
  source: AsyncGenerator<Buffer>,
  resolved: Resolved,
  cleanup?: () => void,
): Readable {
  const stream = Readable.from(source, { objectMode: false, highWaterMark: BATCH_BYTES });
  // cat-file has its own timeout; this one also covers a consumer that stopped reading.
  const timer = setTimeout(() => {
    stream.destroy(
      new PatchbayError('timeout', `exporting the tree took longer than ${resolved.timeoutMs} ms`),
    );
  }, resolved.timeoutMs);
  timer.unref();
  const onAbort = () =>
    stream.destroy(new PatchbayError('cancelled', 'the tree export was cancelled'));
  resolved.signal?.addEventListener('abort', onAbort, { once: true });
  stream.once('close', () => {
    clearTimeout(timer);
    resolved.signal?.removeEventListener('abort', onAbort);
    cleanup?.();
  });
  return stream;
}

/**
 * A tar stream of the tree at `sha`: every file byte for byte as committed, modes (executable
 * bit), symlinks as symlinks, submodules as empty directories.
 *
 * It is built from `git ls-tree` and `git cat-file`, not `git archive`, because `git archive`
 * always honours the archived tree's own `.gitattributes`: `export-ignore` would drop files the
 * sandbox needs, `export-subst` would rewrite file contents, and `eol`/`text` attributes would
 * convert line endings. Nothing here reads attributes, runs filters or writes the tree to the
 * host's disk; content is streamed, never held whole.
 *
 * Checks run before the stream is returned: the commit must be in the mirror (`ref_not_found`),
 * the tree within `maxEntries`/`maxBytes` (`repo_too_large`), and free of paths git itself
 * refuses (`..`, `.git`; `policy_refused`).
 */
export async function exportTree(
  mirror: Mirror,
  sha: string,
  options: TreeExportOptions = {},
): Promise<Readable> {
  const resolved = resolveOptions(options);
  const commit = await readCommit(mirror, sha, resolved);
  const entries = await listTree(mirror, sha, resolved);
  const batch = new Batcher();
  async function* archive(): AsyncGenerator<Buffer> {
    yield* treeTar(mirror, entries, commit, resolved, batch);
    yield* batch.push(END_OF_ARCHIVE);
    yield* batch.flush();
  }
  return toReadable(archive(), resolved);
}

/** Git metadata of a workspace export: a pack of exactly one commit and an index of it. */
interface WorkspaceMeta {
  dir: string;
  packName: string;
}

const inFlightExports = new Map<string, Promise<WorkspaceMeta>>();

/**
 * Makes (or reuses) the pack and index for `sha` under the cache's exports directory. The pack
 * holds the commit, its tree and every blob and subtree in it — no parents, no history — so it
 * is self-contained; `.git/shallow` tells git the parents are missing on purpose.
 */
async function workspaceMeta(
  mirror: Mirror,
  commit: CommitInfo,
  sha: string,
  entries: readonly TreeEntry[],
  resolved: Resolved,
): Promise<WorkspaceMeta> {
  // Keyed by commit alone: the same sha is the same objects whichever URL it came from.
  const dir = join(mirror.exportsDir, sha);
  const existing = inFlightExports.get(dir);
  if (existing) return existing;
  const making = (async (): Promise<WorkspaceMeta> => {
    const found = await readMeta(dir);
    if (found) return found;
    await mkdir(mirror.exportsDir, { recursive: true });
    const temp = `${dir}.tmp-${randomBytes(6).toString('hex')}`;
    await mkdir(temp);
    try {
      const objects = [
        sha,
        commit.tree,
        ...entries.filter((e) => e.type !== 'commit').map((e) => e.oid),
      ];
      // --window=0: no new delta search (speed over size; the pack only crosses to a local
      // container). Deltas already in the mirror are still reused when their base is included.
      const pack = await mirror.git.run(['pack-objects', '-q', '--window=0', join(temp, 'pack')], {
        ...callOptions(mirror, resolved),
        stdin: [...new Set(objects)].map((oid) => `${oid}\n`).join(''),
      });
      if (pack.exitCode !== 0) {
        throw new PatchbayError('internal_error', `git pack-objects failed: ${tail(pack.stderr)}`);
      }
      const index = await mirror.git.run(['read-tree', sha], {
        ...callOptions(mirror, resolved),
        env: { GIT_INDEX_FILE: join(temp, 'index') },
      });
      if (index.exitCode !== 0) {
        throw new PatchbayError('internal_error', `git read-tree failed: ${tail(index.stderr)}`);
      }
      try {
        await rename(temp, dir);
      } catch (err) {
        // Another worker made the same export first; use theirs.
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw err;
      }
      await evictExports(mirror);
      const made = await readMeta(dir);
      if (!made) throw new PatchbayError('internal_error', 'workspace export vanished');
      return made;
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  })();
  inFlightExports.set(dir, making);
  try {
    return await making;
  } finally {
    inFlightExports.delete(dir);
  }
}

async function readMeta(dir: string): Promise<WorkspaceMeta | undefined> {
  const names = await readdir(dir).catch(() => undefined);
  const pack = names?.find((n) => /^pack-[0-9a-f]{40}\.pack$/.test(n));
  if (
    !names ||
    !pack ||
    !names.includes(pack.replace(/\.pack$/, '.idx')) ||
    !names.includes('index')
  ) {
    return undefined;
  }
  const now = new Date();
  await utimes(dir, now, now).catch(() => undefined);
  return { dir, packName: pack.replace(/\.pack$/, '') };
}

/**
 * A temporary export or recording untouched this long was left by a worker that died while
 * writing it (a live one writes to it all the time, and its consumer has a shorter timeout).
 */
const STALE_TEMP_MS = 15 * 60_000;

/**
 * Keeps the newest `maxCachedExports` exports (by last use), and removes the temporary exports
 * and recordings that dead workers left behind.
 */
async function evictExports(mirror: Mirror): Promise<void> {
  const all = await readdir(mirror.exportsDir).catch(() => [] as string[]);
  const names = all.filter((n) => !n.includes('.tmp-'));
  await removeStaleTemps(
    mirror.exportsDir,
    all.filter((n) => n.includes('.tmp-')),
  );
  for (const name of names) {
    const dir = join(mirror.exportsDir, name);
    const inside = await readdir(dir).catch(() => [] as string[]);
    await removeStaleTemps(
      dir,
      inside.filter((n) => n.includes('.tmp-')),
    );
  }
  if (names.length <= mirror.maxCachedExports) return;
  const aged = await Promise.all(
    names.map(async (name) => ({
      name,
      mtime: await stat(join(mirror.exportsDir, name)).then(
        (s) => s.mtimeMs,
        () => 0,
      ),
    })),
  );
  aged.sort((a, b) => b.mtime - a.mtime);
  for (const { name } of aged.slice(mirror.maxCachedExports)) {
    await rm(join(mirror.exportsDir, name), { recursive: true, force: true });
  }
}

async function removeStaleTemps(dir: string, temps: readonly string[]): Promise<void> {
  const cutoff = Date.now() - STALE_TEMP_MS;
  for (const name of temps) {
    const path = join(dir, name);
    const mtime = await stat(path).then(
      (s) => s.mtimeMs,
      () => Date.now(),
    );
    if (mtime < cutoff) await rm(path, { recursive: true, force: true });
  }
}

/** A file of the export, opened up front so eviction cannot pull it away mid-stream. */
interface OpenFile {
  name: string;
  handle: FileHandle;
  size: number;
}

async function* fileEntry(
  file: OpenFile,
  base: Omit<TarEntry, 'name' | 'type' | 'mode' | 'size'>,
): AsyncGenerator<Buffer> {
  yield encodeHeader({
    ...base,
    name: Buffer.from(file.name),
    type: 'file',
    mode: 0o444,
    size: file.size,
  });
  let position = 0;
  while (position < file.size) {
    const chunk = Buffer.allocUnsafe(Math.min(256 * 1024, file.size - position));
    const { bytesRead } = await file.handle.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0)
      throw new PatchbayError('internal_error', `${file.name} shrank while exported`);
    position += bytesRead;
    yield chunk.subarray(0, bytesRead);
  }
  yield padding(file.size);
}

/**
 * A tar stream that, extracted into an empty directory (the sandbox's /workspace), makes it a
 * git repository whose HEAD is `sha`, with a clean `git status`. Nothing needs to run in the
 * container for it.
 *
 * The archive holds the tree exactly as {@link exportTree} streams it, plus a `.git` directory:
 * `HEAD` (detached at `sha`, or on `branch`), `config`, `shallow` (the commit's parents are
 * deliberately absent), a pack of exactly that commit's objects with its index, and an `index`
 * (staging area) listing the tree. The staging area carries no stat data, so the first git
 * command in the container compares file contents once and then works from its refreshed index.
 *
 * Why this and not a bundle: a bundle of one commit needs its parents as prerequisites (or the
 * whole history), and unpacking it would need a command in the container. A shallow `.git`
 * with a one-commit pack is the smallest thing that is a real repository at that commit, so
 * `git diff --binary <sha>`, `git status` and `git log -1` work, and the patch the worker
 * collects applies to any checkout of `sha`.
 *
 * The pack and index are cached per commit under the exports directory, so tasks on the same
 * commit reuse them.
 */
export async function exportWorkspace(
  mirror: Mirror,
  sha: string,
  options: WorkspaceExportOptions = {},
): Promise<Readable> {
  const resolved = resolveOptions(options);
  if (options.branch !== undefined) {
    const problem = refProblem(options.branch);
    if (problem !== undefined || options.branch.startsWith('refs/')) {
      throw new PatchbayError(
        'validation_error',
        `branch name refused: ${problem ?? 'give it without refs/heads/'}`,
        {
          details: { reason: 'invalid_ref' },
        },
      );
    }
  }
  const commit = await readCommit(mirror, sha, resolved);
  // The archive is the same bytes every time for the same commit and options, and building it
  // (a cat-file of every blob) is most of a task's provision time: the first export of a commit
  // records it beside the pack, later ones stream that file. It goes with the export on eviction.
  // A recording exists only once an export with these options passed every check of the tree
  // (paths, sizes, entry count), so a replay does not list the tree again.
  const exportDir = join(mirror.exportsDir, sha);
  const recorded = join(
    exportDir,
    `workspace-${createHash('sha256')
      .update(
        JSON.stringify([
          options.branch ?? null,
          resolved.uid,
          resolved.gid,
          resolved.maxBytes,
          resolved.maxEntries,
        ]),
      )
      .digest('hex')
      .slice(0, 16)}.tar`,
  );
  const replay = await open(recorded, 'r').catch(() => undefined);
  if (replay) {
    // Marks the export as used, for eviction by last use.
    const now = new Date();
    await utimes(exportDir, now, now).catch(() => undefined);
    return toReadable(replayFile(replay), resolved, () => void replay.close().catch(() => {}));
  }
  const entries = await listTree(mirror, sha, resolved);
  const meta = await workspaceMeta(mirror, commit, sha, entries, resolved);
  const files: OpenFile[] = [];
  try {
    for (const [source, name] of [
      [`${meta.packName}.pack`, `.git/objects/pack/${meta.packName}.pack`],
      [`${meta.packName}.idx`, `.git/objects/pack/${meta.packName}.idx`],
      ['index', '.git/index'],
    ] as const) {
      const handle = await open(join(meta.dir, source), 'r');
      files.push({ name, handle, size: (await handle.stat()).size });
    }
  } catch (err) {
    await Promise.all(files.map((f) => f.handle.close()));
    throw err;
  }

  const base = { mtime: commit.time, uid: resolved.uid, gid: resolved.gid };
  const dir = (name: string): TarEntry => ({
    ...base,
    name: Buffer.from(name),
    type: 'directory',
    mode: 0o755,
    size: 0,
  });
  const text = (name: string, content: string): Buffer[] => {
    const body = Buffer.from(content);
    return [
      encodeHeader({
        ...base,
        name: Buffer.from(name),
        type: 'file',
        mode: 0o644,
        size: body.length,
      }),
      body,
      padding(body.length),
    ];
  };
  const branch = options.branch;
  const batch = new Batcher();
  async function* archive(): AsyncGenerator<Buffer> {
    try {
      for (const name of [
        '.git',
        '.git/objects',
        '.git/objects/info',
        '.git/objects/pack',
        '.git/refs',
        '.git/refs/heads',
        '.git/refs/tags',
        '.git/info',
      ]) {
        yield* batch.push(encodeHeader(dir(name)));
      }
      const parts = [
        ...text('.git/HEAD', branch === undefined ? `${sha}\n` : `ref: refs/heads/${branch}\n`),
        ...text(
          '.git/config',
          '[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = false\n\tlogallrefupdates = true\n',
        ),
        ...text('.git/description', 'Patchbay workspace\n'),
      ];
      if (commit.parents.length > 0) parts.push(...text('.git/shallow', `${sha}\n`));
      if (branch !== undefined) {
        // Intermediate directories of a branch like feature/x.
        const segments = branch.split('/');
        for (let i = 1; i < segments.length; i++) {
          parts.push(encodeHeader(dir(`.git/refs/heads/${segments.slice(0, i).join('/')}`)));
        }
        parts.push(...text(`.git/refs/heads/${branch}`, `${sha}\n`));
      }
      for (const part of parts) yield* batch.push(part);
      for (const file of files) {
        for await (const part of fileEntry(file, base)) yield* batch.push(part);
      }
      yield* treeTar(mirror, entries, commit, resolved, batch);
      yield* batch.push(END_OF_ARCHIVE);
      yield* batch.flush();
    } finally {
      await Promise.all(files.map((f) => f.handle.close().catch(() => undefined)));
    }
  }
  return toReadable(recording(archive(), recorded), resolved);
}

/** Read size of a recorded archive: few, large reads (it is already in whole tar blocks). */
const REPLAY_READ_BYTES = 1024 * 1024;

/** Streams a recorded archive; the handle was opened first, so eviction cannot pull it away. */
async function* replayFile(handle: FileHandle): AsyncGenerator<Buffer> {
  try {
    for (;;) {
      const buf = Buffer.allocUnsafe(REPLAY_READ_BYTES);
      const { bytesRead } = await handle.read(buf, 0, REPLAY_READ_BYTES, null);
      if (bytesRead === 0) return;
      yield buf.subarray(0, bytesRead);
    }
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * Passes `source` through and writes it to `path`, renamed into place only once the whole
 * archive went through: a consumer that stops early, or an export that fails, leaves nothing.
 */
async function* recording(source: AsyncGenerator<Buffer>, path: string): AsyncGenerator<Buffer> {
  const temp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  const out = await open(temp, 'wx').catch(() => undefined);
  if (!out) {
    // Not recordable (the export was just evicted, disk trouble): serve it unrecorded.
    yield* source;
    return;
  }
  let complete = false;
  try {
    for await (const chunk of source) {
      await out.write(chunk);
      yield chunk;
    }
    complete = true;
  } finally {
    await out.close().catch(() => undefined);
    if (complete) await rename(temp, path).catch(() => rm(temp, { force: true }));
    else await rm(temp, { force: true });
  }
}
