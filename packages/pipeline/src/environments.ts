import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { type Logger, type Task } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
import type { EnvironmentRecord } from '@patchbay/store';
import type { SharedSnapshots } from './shared-snapshots.js';

/** One cached environment, as the index (Redis) and the entry's metadata file keep it. */
export type EnvironmentEntry = EnvironmentRecord;

/** Where entries are listed (so the API can show and drop them); the files stay on the worker. */
export interface EnvironmentIndex {
  get(tenant: string, key: string): Promise<EnvironmentEntry | null>;
  put(entry: EnvironmentEntry): Promise<void>;
  remove(tenant: string, key: string): Promise<void>;
}

export interface EnvironmentCacheOptions {
  /** Directory of this worker's snapshots. */
  dir: string;
  index: EnvironmentIndex;
  /** Most bytes of snapshots kept; the least recently used go first. */
  maxBytes: number;
  /** Age past which an entry is not used. */
  ttlMs: number;
  workerId: string;
  log: Logger;
  /** Where workers share snapshots (S3); each worker's own directory only when absent. */
  shared?: SharedSnapshots | undefined;
}

/** A snapshot's name in the shared store: per tenant, key and content. */
const sharedName = (e: EnvironmentEntry): string => `${e.tenant}/${e.key}.${e.sha256}.tar.gz`;

/** The snapshot's staging files in the sandbox (its /tmp; removed once taken or laid down). */
const STAGE = '/tmp/.patchbay-env';

/**
 * Setup snapshots: what a task's setup wrote (untracked and ignored files of /workspace, and the
 * sandbox user's home, less the package managers' download caches, whose contents are installed
 * in the workspace already and would double the snapshot) kept after a successful setup, keyed by tenant, repository, image, setup
 * script, env and the content of the lockfiles the task names; a later task with the same key
 * starts from it and skips setup. Entries are a gzip file plus a metadata file written last (the
 * entry exists once that is in place), checked against their SHA-256 before use; one that holds a
 * value of a task's secret is never written.
 */
export class EnvironmentCache {
  readonly #o: EnvironmentCacheOptions;
  #ready: Promise<void> | undefined;

  constructor(options: EnvironmentCacheOptions) {
    this.#o = options;
  }

  /**
   * The key of the task's environment as the sandbox holds it now (checked out, before setup):
   * null when the task has no setup.
   */
  async keyOf(
    task: Task,
    image: string,
    sandbox: Sandbox,
    signal: AbortSignal,
  ): Promise<string | null> {
    const setup = task.environment.setup;
    if (setup === null) return null;
    const files = task.environment.cacheKey;
    const hashed =
      files.length === 0
        ? ''
        : (
            await sandbox.exec(
              [
                'sh',
                '-c',
                'git ls-files -z --cached --others --exclude-standard -- "$@" | sort -zu | xargs -0 -r sha256sum --',
                'sh',
                ...files,
              ],
              { signal, timeoutMs: 60_000 },
            )
          ).output.toString('utf8');
    const env = Object.entries(task.environment.env).sort(([a], [b]) => a.localeCompare(b));
    return createHash('sha256')
      .update(
        JSON.stringify({
          v: 1,
          tenant: task.tenant,
          repo: task.repo.url,
          image,
          setup,
          env,
          hashed,
        }),
      )
      .digest('hex');
  }

  /**
   * Lays the cached environment down in the sandbox, over the checked-out tree (files the tree has
   * are kept): true when it did. A missing, expired, dropped or corrupt entry is a miss (and a
   * corrupt one is removed).
   */
  async restore(
    tenant: string,
    key: string,
    sandbox: Sandbox,
    signal: AbortSignal,
  ): Promise<boolean> {
    await this.#init();
    const indexed = await this.#o.index.get(tenant, key);
    let meta = await this.#meta(key);
    // Another worker's snapshot (or a newer one than this worker has): from the shared store.
    if (indexed !== null && indexed.tenant === tenant && meta?.sha256 !== indexed.sha256)
      meta = (await this.#fetchShared(indexed)) ?? meta;
    if (meta === null || meta.tenant !== tenant) return false;
    if (indexed === null || indexed.sha256 !== meta.sha256) {
      // Dropped through the API (or replaced by another worker's): this copy is not to be used.
      await this.#drop(tenant, key, 'not in the index', indexed === null);
      return false;
    }
    if (Date.now() - Date.parse(meta.createdAt) > this.#o.ttlMs) {
      await this.#drop(tenant, key, 'expired');
      return false;
    }
    const file = this.#dataPath(key, meta.sha256);
    const started = Date.now();
    if ((await sha256Of(file).catch(() => null)) !== meta.sha256) {
      await this.#drop(tenant, key, 'corrupt');
      return false;
    }
    try {
      // One stream from the file into place: the snapshot only adds, files the checkout has stay.
      // Compressed over the channel, unpacked by the sandbox's own tar.
      await sandbox.putArchive(createReadStream(file), {
        path: '/',
        keepExisting: true,
        gzip: true,
        signal,
      });
    } catch (err) {
      signal.throwIfAborted();
      this.#o.log.warn({ err, key }, 'a cached environment could not be laid down; running setup');
      await this.#drop(tenant, key, 'unusable');
      return false;
    }
    this.#o.log.debug(
      { key, bytes: meta.bytes, ms: Date.now() - started },
      'cached environment laid down',
    );
    const now = new Date().toISOString();
    await writeFile(this.#metaPath(key), JSON.stringify({ ...meta, lastUsedAt: now }));
    await this.#o.index.put({ ...indexed, lastUsedAt: now });
    return true;
  }

  /**
   * Takes a snapshot of what setup made and keeps it under `key`. Never fails the task: a
   * snapshot that cannot be taken (too big for the sandbox's /tmp, holding a secret) is skipped.
   */
  async save(
    task: Task,
    key: string,
    image: string,
    sandbox: Sandbox,
    secrets: readonly string[],
    signal: AbortSignal,
  ): Promise<boolean> {
    await this.#init();
    const staged = await sandbox.exec(
      [
        'sh',
        '-c',
        `set -e; cd /workspace
{ git ls-files -z --others --exclude-standard; git ls-files -z --others --ignored --exclude-standard --directory; } | sed -z 's|^|workspace/|' > ${STAGE}.list
printf '%s\\0' "\${HOME#/}" >> ${STAGE}.list
h="\${HOME#/}"
s=0; tar -C / --null --ignore-failed-read --exclude="$h/.npm/_cacache" --exclude="$h/.cache/pip" --exclude="$h/.cache/yarn" -T ${STAGE}.list -cf ${STAGE}.tar || s=$?
[ "$s" -le 1 ]
rm -f ${STAGE}.list`,
      ],
      { signal, timeoutMs: 300_000 },
    );
    const cleanup = () =>
      sandbox
        .exec(['rm', '-f', `${STAGE}.tar`, `${STAGE}.list`], { timeoutMs: 30_000 })
        .catch(() => undefined);
    if (staged.exitCode !== 0) {
      await cleanup();
      this.#o.log.info(
        { taskId: task.id, output: staged.output.toString('utf8').slice(-300) },
        'no environment snapshot: it could not be staged',
      );
      return false;
    }
    const tmp = join(this.#o.dir, `${key}.tmp-${randomBytes(6).toString('hex')}`);
    const scan = new SecretScan(secrets);
    const hash = createHash('sha256');
    let bytes = 0;
    try {
      const archive = await sandbox.getArchive(`${STAGE}.tar`, { signal });
      const count = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          bytes += chunk.length;
          done(null, chunk);
        },
      });
      // Kept: the staged tar itself (unwrapped from the one-member archive it comes out in).
      await pipeline(
        archive,
        new TarMember(),
        scan,
        createGzip({ level: 1 }),
        count,
        createWriteStream(tmp),
      );
    } catch (err) {
      await rm(tmp, { force: true });
      await cleanup();
      signal.throwIfAborted();
      this.#o.log.warn({ err, taskId: task.id }, 'no environment snapshot: taking it failed');
      return false;
    }
    await cleanup();
    if (scan.found) {
      await rm(tmp, { force: true });
      this.#o.log.warn(
        { taskId: task.id },
        "no environment snapshot: setup left a secret's value in it",
      );
      return false;
    }
    const sha256 = hash.digest('hex');
    const now = new Date().toISOString();
    const entry: EnvironmentEntry = {
      key,
      tenant: task.tenant,
      repo: task.repo.url,
      image,
      commit: task.baseCommit ?? '',
      bytes,
      sha256,
      createdAt: now,
      lastUsedAt: now,
      worker: this.#o.workerId,
    };
    // Data first, metadata last: until the metadata is in place there is no entry to use.
    await rename(tmp, this.#dataPath(key, sha256));
    const metaTmp = `${this.#metaPath(key)}.tmp-${randomBytes(6).toString('hex')}`;
    await writeFile(metaTmp, JSON.stringify(entry));
    await rename(metaTmp, this.#metaPath(key));
    await this.#o.index.put(entry);
    if (this.#o.shared) {
      await this.#o.shared
        .upload(sharedName(entry), this.#dataPath(key, sha256))
        .catch((err: unknown) =>
          this.#o.log.warn({ err, key }, 'sharing an environment snapshot failed; kept here only'),
        );
    }
    await this.#evict();
    return true;
  }

  /**
   * Brings the indexed snapshot from the shared store into this worker's cache: checked against
   * the index's SHA-256 before it becomes an entry here. Null when there is none to be had.
   */
  async #fetchShared(indexed: EnvironmentEntry): Promise<EnvironmentEntry | null> {
    if (!this.#o.shared) return null;
    const tmp = join(this.#o.dir, `${indexed.key}.tmp-${randomBytes(6).toString('hex')}`);
    try {
      if (!(await this.#o.shared.download(sharedName(indexed), tmp))) return null;
      if ((await sha256Of(tmp)) !== indexed.sha256) {
        this.#o.log.warn(
          { key: indexed.key },
          'a shared environment snapshot does not match its hash',
        );
        return null;
      }
      await rename(tmp, this.#dataPath(indexed.key, indexed.sha256));
      const metaTmp = `${this.#metaPath(indexed.key)}.tmp-${randomBytes(6).toString('hex')}`;
      await writeFile(metaTmp, JSON.stringify(indexed));
      await rename(metaTmp, this.#metaPath(indexed.key));
      return indexed;
    } catch (err) {
      this.#o.log.warn({ err, key: indexed.key }, 'fetching a shared environment snapshot failed');
      return null;
    } finally {
      await rm(tmp, { force: true });
    }
  }

  /** Removes the least recently used entries until the cache fits, and files no entry names. */
  async #evict(): Promise<void> {
    const names = await readdir(this.#o.dir);
    const metas = (
      await Promise.all(
        names.filter((n) => n.endsWith('.json')).map((n) => this.#meta(n.slice(0, -5))),
      )
    ).filter((m): m is EnvironmentEntry => m !== null);
    const live = new Set(metas.map((m) => `${m.key}.${m.sha256}.tar.gz`));
    for (const name of names) {
      if (name.endsWith('.tar.gz') && !live.has(name))
        await rm(join(this.#o.dir, name), { force: true });
    }
    let total = metas.reduce((sum, m) => sum + m.bytes, 0);
    for (const m of metas.sort((a, b) => a.lastUsedAt.localeCompare(b.lastUsedAt))) {
      if (total <= this.#o.maxBytes) break;
      await this.#drop(m.tenant, m.key, 'evicted');
      total -= m.bytes;
    }
  }

  /** Removes this worker's copy of an entry, and its listing unless it is another's now. */
  async #drop(tenant: string, key: string, why: string, unlist = true): Promise<void> {
    const meta = await this.#meta(key);
    await rm(this.#metaPath(key), { force: true });
    if (meta) await rm(this.#dataPath(key, meta.sha256), { force: true });
    if (unlist) await this.#o.index.remove(tenant, key).catch(() => undefined);
    this.#o.log.info({ key, why }, 'cached environment dropped');
  }

  async #meta(key: string): Promise<EnvironmentEntry | null> {
    try {
      return JSON.parse(await readFile(this.#metaPath(key), 'utf8')) as EnvironmentEntry;
    } catch {
      return null;
    }
  }

  /** Creates the directory and clears what a killed worker left half written. */
  #init(): Promise<void> {
    return (this.#ready ??= (async () => {
      await mkdir(this.#o.dir, { recursive: true });
      for (const name of await readdir(this.#o.dir))
        if (name.includes('.tmp-')) await rm(join(this.#o.dir, name), { force: true });
    })());
  }

  #metaPath(key: string): string {
    return join(this.#o.dir, `${key}.json`);
  }

  #dataPath(key: string, sha256: string): string {
    return join(this.#o.dir, `${key}.${sha256}.tar.gz`);
  }
}

/** Passes bytes through, noting whether any secret value went by (across chunk boundaries too). */
class SecretScan extends Transform {
  found = false;
  readonly #needles: Buffer[];
  readonly #keep: number;
  #tail = Buffer.alloc(0);

  constructor(secrets: readonly string[]) {
    super();
    this.#needles = secrets.filter((s) => s.length > 0).map((s) => Buffer.from(s));
    this.#keep = Math.max(0, ...this.#needles.map((n) => n.length - 1));
  }

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err: null, data: Buffer) => void,
  ): void {
    if (!this.found && this.#needles.length > 0) {
      const window = Buffer.concat([this.#tail, chunk]);
      if (this.#needles.some((n) => window.includes(n))) this.found = true;
      this.#tail = window.subarray(Math.max(0, window.length - this.#keep));
    }
    done(null, chunk);
  }
}

/**
 * The content of the one file a tar stream holds (a `getArchive` of a file): its header (and a
 * pax extended header before it, if any) dropped, the content passed on, the padding dropped.
 */
class TarMember extends Transform {
  #buffer: Buffer = Buffer.alloc(0);
  /** Bytes of content still to pass on; null while a header is being read. */
  #left: number | null = null;

  override _transform(
    chunk: Buffer,
    _enc: BufferEncoding,
    done: (err?: Error | null) => void,
  ): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    try {
      this.#drain();
      done();
    } catch (err) {
      done(err as Error);
    }
  }

  override _flush(done: (err?: Error | null) => void): void {
    done(this.#left === null || this.#left === 0 ? null : new Error('the archive ended early'));
  }

  #drain(): void {
    while (this.#buffer.length > 0) {
      if (this.#left === 0) {
        this.#buffer = Buffer.alloc(0);
        return;
      }
      if (this.#left === null) {
        if (this.#buffer.length < 512) return;
        const header = this.#buffer.subarray(0, 512);
        const size = Number.parseInt(
          header.subarray(124, 136).toString('latin1').replace(/\0.*$/, '').trim() || '0',
          8,
        );
        const type = String.fromCharCode(header[156] ?? 0);
        if (Number.isNaN(size)) throw new Error('not a tar header');
        if (type === 'x' || type === 'g' || type === 'L') {
          // An extended header: skip it and its padded content, then read the member's header.
          const skip = 512 + Math.ceil(size / 512) * 512;
          if (this.#buffer.length < skip) return;
          this.#buffer = this.#buffer.subarray(skip);
          continue;
        }
        this.#buffer = this.#buffer.subarray(512);
        this.#left = size;
        continue;
      }
      const take = Math.min(this.#left, this.#buffer.length);
      this.push(this.#buffer.subarray(0, take));
      this.#buffer = this.#buffer.subarray(take);
      this.#left -= take;
    }
  }
}

async function sha256Of(path: string): Promise<string> {
  await stat(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path) as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
