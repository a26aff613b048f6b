import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { type Logger, type Task } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

/** One cached environment, as the index (Redis) and the entry's metadata file keep it. */
export interface EnvironmentEntry {
  key: string;
  tenant: string;
  repo: string;
  image: string;
  /** The commit whose setup made it. */
  commit: string;
  /** The compressed snapshot's size and SHA-256. */
  bytes: number;
  sha256: string;
  createdAt: string;
  lastUsedAt: string;
  worker: string;
}

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
}

/** The snapshot's staging files in the sandbox (its /tmp; removed once taken or laid down). */
const STAGE = '/tmp/.patchbay-env';

/**
 * Setup snapshots: what a task's setup wrote (untracked and ignored files of /workspace, and the
 * sandbox user's home) kept after a successful setup, keyed by tenant, repository, image, setup
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
    const meta = await this.#meta(key);
    const indexed = await this.#o.index.get(tenant, key);
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
    if ((await sha256Of(file).catch(() => null)) !== meta.sha256) {
      await this.#drop(tenant, key, 'corrupt');
      return false;
    }
    try {
      await sandbox.putArchive(createReadStream(file).pipe(createGunzip()), {
        path: '/tmp',
        signal,
      });
      const laid = await sandbox.exec(
        [
          'sh',
          '-c',
          `tar -C / --skip-old-files -xf ${STAGE}.tar; s=$?; rm -f ${STAGE}.tar; exit $s`,
        ],
        { signal, timeoutMs: 300_000 },
      );
      if (laid.exitCode !== 0) throw new Error(laid.output.toString('utf8').slice(-500));
    } catch (err) {
      signal.throwIfAborted();
      this.#o.log.warn({ err, key }, 'a cached environment could not be laid down; running setup');
      await this.#drop(tenant, key, 'unusable');
      return false;
    }
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
s=0; tar -C / --null --ignore-failed-read -T ${STAGE}.list -cf ${STAGE}.tar || s=$?
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
      await pipeline(archive, scan, createGzip({ level: 1 }), count, createWriteStream(tmp));
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
    await this.#evict();
    return true;
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

async function sha256Of(path: string): Promise<string> {
  await stat(path);
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path) as Readable) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
