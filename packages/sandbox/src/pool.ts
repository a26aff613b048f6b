import type { Logger } from '@patchbay/core';
import type { SandboxPreload } from './types.js';

/** What the pool needs of a sandbox it keeps. */
export interface Poolable {
  readonly name: string;
  readonly createdAt: Date;
  readonly broken: boolean;
  destroy(): Promise<void>;
}

/** Images used by tasks (beyond the configured ones) that keep a pool, most recent first. */
const MAX_LAZY_IMAGES = 2;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 60_000;

interface ImagePool<T> {
  image: string;
  /** For a pool of prepared sandboxes: how the next one is prepared (the latest spec's). */
  preload: SandboxPreload | undefined;
  ready: T[];
  filling: Promise<void> | undefined;
  failures: number;
  retry: NodeJS.Timeout | undefined;
  /** Configured images are never evicted. */
  pinned: boolean;
}

/**
 * Containers created ahead of time, per image, so that a task's sandbox is ready in
 * milliseconds. Each pooled container serves one task only; taking one starts making its
 * replacement. Pooled containers have no network and the operator's default limits.
 *
 * Beside the plain pools, prepared ones: one container per preload key (a tenant's repository,
 * say) that already holds what the last spec with that key asked for, for the few most recently
 * used keys. Preparing is best effort: when it fails, that key's pool is dropped until a spec
 * asks for it again.
 */
export class WarmPool<T extends Poolable> {
  readonly #size: number;
  readonly #preloads: number;
  readonly #make: (
    image: string,
    preload: SandboxPreload | undefined,
    signal: AbortSignal,
  ) => Promise<T>;
  readonly #log: Logger;
  readonly #maxIdleMs: number;
  /** Keyed by {@link poolKey}. */
  readonly #pools = new Map<string, ImagePool<T>>();
  readonly #closing = new AbortController();
  #closed = false;

  constructor(options: {
    size: number;
    /** Preload keys that keep a prepared container (most recently used first); 0: none. */
    preloads?: number;
    /** A new container of `image`, prepared with `preload` when given; `signal`: the pool closes. */
    make: (image: string, preload: SandboxPreload | undefined, signal: AbortSignal) => Promise<T>;
    logger: Logger;
    /** A pooled container older than this is replaced rather than handed out. */
    maxIdleMs: number;
  }) {
    this.#size = options.size;
    this.#preloads = options.preloads ?? 0;
    this.#make = options.make;
    this.#log = options.logger;
    this.#maxIdleMs = options.maxIdleMs;
  }

  /**
   * Keeps `image` warm: pinned images always, others while among the most recently used. With
   * `preload`, keeps one container of `image` prepared by it instead.
   */
  want(image: string, options: { pinned?: boolean; preload?: SandboxPreload } = {}): void {
    const { pinned = false, preload } = options;
    if (this.#closed || this.#size === 0) return;
    if (preload !== undefined && this.#preloads === 0) return;
    const key = poolKey(image, preload?.key);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = {
        image,
        preload,
        ready: [],
        filling: undefined,
        failures: 0,
        retry: undefined,
        pinned: pinned && preload === undefined,
      };
      this.#evictFor(pool);
    } else {
      // Map order is recency order: move it to the end.
      this.#pools.delete(key);
      pool.pinned ||= pinned && preload === undefined;
      // The latest spec says what the next one holds (the commit a repository is at now).
      pool.preload = preload;
    }
    this.#pools.set(key, pool);
    this.#fill(key, pool);
  }

  /** A ready container of `image` (prepared under `preloadKey` if given), or undefined. */
  take(image: string, preloadKey?: string): T | undefined {
    const key = poolKey(image, preloadKey);
    const pool = this.#pools.get(key);
    if (pool === undefined) return undefined;
    let found: T | undefined;
    while (found === undefined && pool.ready.length > 0) {
      const candidate = pool.ready.shift()!;
      if (candidate.broken || Date.now() - candidate.createdAt.getTime() > this.#maxIdleMs) {
        this.#discard(candidate);
      } else {
        found = candidate;
      }
    }
    // A prepared pool is refilled by the next `want`, with what that spec asks for.
    if (pool.preload === undefined) this.#fill(key, pool);
    return found;
  }

  /**
   * Replaces ready containers that broke (the reaper may have removed one past its age) or
   * grew too old, so an idle pool stays ready.
   */
  prune(): void {
    for (const [key, pool] of this.#pools) {
      const keep = pool.ready.filter(
        (s) => !s.broken && Date.now() - s.createdAt.getTime() <= this.#maxIdleMs,
      );
      for (const s of pool.ready) if (!keep.includes(s)) this.#discard(s);
      pool.ready = keep;
      // A prepared container that aged out is not made again: only a new spec asks for one.
      if (pool.preload !== undefined && keep.length === 0 && pool.filling === undefined)
        this.#pools.delete(key);
      else if (pool.preload === undefined) this.#fill(key, pool);
    }
  }

  /** How many containers of `image` (prepared under `preloadKey` if given) are ready now. */
  readyCount(image: string, preloadKey?: string): number {
    return this.#pools.get(poolKey(image, preloadKey))?.ready.length ?? 0;
  }

  /** Stops filling and destroys every pooled container. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#closing.abort();
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    for (const pool of pools) clearTimeout(pool.retry);
    await Promise.allSettled(pools.flatMap((p) => (p.filling === undefined ? [] : [p.filling])));
    await Promise.allSettled(pools.flatMap((p) => p.ready.splice(0).map((s) => s.destroy())));
  }

  /** Makes room for `added`: the least recently used pools of its kind beyond their number go. */
  #evictFor(added: ImagePool<T>): void {
    if (added.pinned) return;
    const prepared = added.preload !== undefined;
    const limit = prepared ? this.#preloads : MAX_LAZY_IMAGES;
    const same = [...this.#pools.entries()].filter(
      ([, p]) => !p.pinned && (p.preload !== undefined) === prepared,
    );
    for (const [key, pool] of same.slice(0, Math.max(0, same.length - limit + 1))) {
      this.#pools.delete(key);
      clearTimeout(pool.retry);
      for (const s of pool.ready.splice(0)) this.#discard(s);
    }
  }

  #discard(sandbox: T): void {
    sandbox
      .destroy()
      .catch((err: unknown) =>
        this.#log.warn({ err, sandbox: sandbox.name }, 'removing a pooled sandbox failed'),
      );
  }

  #fill(key: string, pool: ImagePool<T>): void {
    if (this.#closed || pool.filling !== undefined || pool.retry !== undefined) return;
    // A prepared pool holds one: the next task of its key takes it, the rest start plain.
    const size = pool.preload === undefined ? this.#size : 1;
    if (pool.ready.length >= size) return;
    // One container at a time per pool: a burst of creates would compete with running tasks.
    pool.filling = (async () => {
      while (!this.#closed && this.#pools.get(key) === pool && pool.ready.length < size) {
        const sandbox = await this.#make(pool.image, pool.preload, this.#closing.signal);
        if (this.#closed || this.#pools.get(key) !== pool) {
          this.#discard(sandbox);
          return;
        }
        pool.ready.push(sandbox);
        pool.failures = 0;
      }
    })()
      .catch((err: unknown) => {
        if (pool.preload !== undefined) {
          // Best effort: the next spec with this key asks again (with what is current then).
          if (this.#pools.get(key) === pool) this.#pools.delete(key);
          for (const s of pool.ready.splice(0)) this.#discard(s);
          this.#log.warn({ err, image: pool.image }, 'preparing a pooled sandbox failed');
          return;
        }
        pool.failures += 1;
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (pool.failures - 1));
        this.#log.warn(
          { err, image: pool.image, retryInMs: delay },
          'filling the warm pool failed',
        );
        pool.retry = setTimeout(() => {
          pool.retry = undefined;
          this.#fill(key, pool);
        }, delay);
        pool.retry.unref();
      })
      .finally(() => {
        pool.filling = undefined;
        // A container taken while the loop was finishing still needs its replacement.
        if (pool.retry === undefined && this.#pools.get(key) === pool) this.#fill(key, pool);
      });
  }
}

/** A pool's key: the image, and for a prepared pool its preload key (after a NUL). */
function poolKey(image: string, preloadKey: string | undefined): string {
  return preloadKey === undefined ? image : `${image}\0${preloadKey}`;
}
