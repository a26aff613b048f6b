import type { Logger } from '@patchbay/core';

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
 */
export class WarmPool<T extends Poolable> {
  readonly #size: number;
  readonly #make: (image: string) => Promise<T>;
  readonly #log: Logger;
  readonly #maxIdleMs: number;
  readonly #pools = new Map<string, ImagePool<T>>();
  #closed = false;

  constructor(options: {
    size: number;
    make: (image: string) => Promise<T>;
    logger: Logger;
    /** A pooled container older than this is replaced rather than handed out. */
    maxIdleMs: number;
  }) {
    this.#size = options.size;
    this.#make = options.make;
    this.#log = options.logger;
    this.#maxIdleMs = options.maxIdleMs;
  }

  /** Keeps `image` warm: pinned images always, others while among the most recently used. */
  want(image: string, pinned = false): void {
    if (this.#closed || this.#size === 0) return;
    let pool = this.#pools.get(image);
    if (pool === undefined) {
      pool = { ready: [], filling: undefined, failures: 0, retry: undefined, pinned };
      this.#evictFor(pinned);
    } else {
      // Map order is recency order: move it to the end.
      this.#pools.delete(image);
      pool.pinned ||= pinned;
    }
    this.#pools.set(image, pool);
    this.#fill(image, pool);
  }

  /** A ready container of `image`, or undefined when none is ready. */
  take(image: string): T | undefined {
    const pool = this.#pools.get(image);
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
    this.#fill(image, pool);
    return found;
  }

  /**
   * Replaces ready containers that broke (the reaper may have removed one past its age) or
   * grew too old, so an idle pool stays ready.
   */
  prune(): void {
    for (const [image, pool] of this.#pools) {
      const keep = pool.ready.filter(
        (s) => !s.broken && Date.now() - s.createdAt.getTime() <= this.#maxIdleMs,
      );
      for (const s of pool.ready) if (!keep.includes(s)) this.#discard(s);
      pool.ready = keep;
      this.#fill(image, pool);
    }
  }

  /** How many containers of `image` are ready now. */
  readyCount(image: string): number {
    return this.#pools.get(image)?.ready.length ?? 0;
  }

  /** Stops filling and destroys every pooled container. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    for (const pool of pools) clearTimeout(pool.retry);
    await Promise.allSettled(pools.flatMap((p) => (p.filling === undefined ? [] : [p.filling])));
    await Promise.allSettled(pools.flatMap((p) => p.ready.splice(0).map((s) => s.destroy())));
  }

  #evictFor(pinned: boolean): void {
    if (pinned) return;
    const lazy = [...this.#pools.entries()].filter(([, p]) => !p.pinned);
    for (const [image, pool] of lazy.slice(0, Math.max(0, lazy.length - MAX_LAZY_IMAGES + 1))) {
      this.#pools.delete(image);
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

  #fill(image: string, pool: ImagePool<T>): void {
    if (this.#closed || pool.filling !== undefined || pool.retry !== undefined) return;
    if (pool.ready.length >= this.#size) return;
    // One container at a time per image: a burst of creates would compete with running tasks.
    pool.filling = (async () => {
      while (!this.#closed && this.#pools.get(image) === pool && pool.ready.length < this.#size) {
        const sandbox = await this.#make(image);
        if (this.#closed || this.#pools.get(image) !== pool) {
          this.#discard(sandbox);
          return;
        }
        pool.ready.push(sandbox);
        pool.failures = 0;
      }
    })()
      .catch((err: unknown) => {
        pool.failures += 1;
        const delay = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (pool.failures - 1));
        this.#log.warn({ err, image, retryInMs: delay }, 'filling the warm pool failed');
        pool.retry = setTimeout(() => {
          pool.retry = undefined;
          this.#fill(image, pool);
        }, delay);
        pool.retry.unref();
      })
      .finally(() => {
        pool.filling = undefined;
        // A container taken while the loop was finishing still needs its replacement.
        if (pool.retry === undefined) this.#fill(image, pool);
      });
  }
}
