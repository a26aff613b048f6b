import type { Logger } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

/** Where the worker says which kept sandboxes it holds, so other workers' reapers spare them. */
export interface KeptRegistry {
  mark(taskId: string, attempt: number, ttlMs: number): Promise<void>;
  unmark(taskId: string, attempt: number): Promise<void>;
}

export interface SandboxKeeperOptions {
  /** How long a sandbox is kept after its turn ended; 0 keeps none. */
  keepAliveMs: number;
  /** Most sandboxes kept at once by this worker; past it the oldest goes. */
  maxKept: number;
  registry?: KeptRegistry;
  /**
   * Whether a kept sandbox of a task's turn can no longer be used: its follow-up went on without
   * it (on another worker). Asked every `sweepMs` for each kept sandbox; those it names go at once
   * rather than when their window closes.
   */
  isStale?: (taskId: string, turn: number) => Promise<boolean>;
  /** @default 30_000 */
  sweepMs?: number;
  log: Logger;
}

interface Kept {
  taskId: string;
  attempt: number;
  sandbox: Sandbox;
  turn: number;
  timer: NodeJS.Timeout;
}

/**
 * Sandboxes kept alive for a short while after a turn ended, so that a quick follow-up goes on
 * in the same container: no fetch, no setup. A kept sandbox holds no running task (the task has
 * ended), so it counts against this worker's cap of kept sandboxes (`maxKept`), not against the
 * tenant's active tasks. With several attempts per turn each attempt's is kept, and the follow-up
 * takes the chosen one's. A kept sandbox is removed when its window closes, when a newer one needs
 * its place, when the worker closes, or when its task's follow-up takes another one.
 */
export class SandboxKeeper {
  readonly #options: SandboxKeeperOptions;
  /** In the order they were kept, oldest first; keyed by task and attempt. */
  readonly #kept = new Map<string, Kept>();
  /** Removals of sandboxes let go of without waiting (evicted, or left by a follow-up). */
  readonly #removing = new Set<Promise<void>>();
  #closed = false;
  readonly #sweeper: NodeJS.Timeout | undefined;

  constructor(options: SandboxKeeperOptions) {
    this.#options = options;
    if (options.isStale !== undefined && options.keepAliveMs > 0) {
      this.#sweeper = setInterval(() => void this.sweep(), options.sweepMs ?? 30_000);
      this.#sweeper.unref();
    }
  }

  /** Removes the kept sandboxes `isStale` names (it runs by itself every `sweepMs`). */
  async sweep(): Promise<void> {
    const { isStale } = this.#options;
    if (isStale === undefined) return;
    for (const [key, kept] of [...this.#kept]) {
      const stale = await isStale(kept.taskId, kept.turn).catch(() => false);
      if (stale && this.#kept.get(key) === kept) await this.#drop(key);
    }
  }

  /** Sandboxes kept now. */
  get size(): number {
    return this.#kept.size;
  }

  /**
   * Keeps the sandbox of an attempt of a task's ended turn; false when keeping is off or closed
   * (the caller removes it then).
   */
  async keep(taskId: string, turn: number, attempt: number, sandbox: Sandbox): Promise<boolean> {
    const { keepAliveMs, maxKept } = this.#options;
    if (this.#closed || keepAliveMs <= 0 || maxKept <= 0) return false;
    const key = keyOf(taskId, attempt);
    // What makes room goes in the background: the turn that is ending does not wait for an older
    // container to be removed (about a tenth of a second of a task's end, measured).
    this.#dropLater(key);
    while (this.#kept.size >= maxKept) {
      const oldest = this.#kept.keys().next().value;
      if (oldest === undefined) break;
      this.#dropLater(oldest);
    }
    const timer = setTimeout(() => void this.#drop(key), keepAliveMs);
    timer.unref();
    this.#kept.set(key, { taskId, attempt, sandbox, turn, timer });
    await this.#options.registry?.mark(taskId, attempt, keepAliveMs).catch((err: unknown) => {
      this.#options.log.warn({ err, taskId }, 'recording a kept sandbox failed');
    });
    return true;
  }

  /**
   * The sandbox kept after attempt `attempt` of turn `turn` of the task, taken out of keeping (the
   * caller owns it now); undefined when there is none, it is from another turn, or it broke
   * meanwhile. The task's other kept sandboxes are removed: the conversation went on without them.
   */
  async take(taskId: string, turn: number, attempt: number): Promise<Sandbox | undefined> {
    const key = keyOf(taskId, attempt);
    const kept = this.#kept.get(key);
    for (const [other, entry] of [...this.#kept]) {
      if (entry.taskId === taskId && other !== key) this.#dropLater(other);
    }
    if (kept === undefined) return undefined;
    this.#kept.delete(key);
    clearTimeout(kept.timer);
    await this.#options.registry?.unmark(taskId, attempt).catch(() => undefined);
    if (kept.turn !== turn || kept.sandbox.broken) {
      await kept.sandbox.destroy().catch(() => undefined);
      return undefined;
    }
    return kept.sandbox;
  }

  /** Removes every kept sandbox and keeps no more. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    await Promise.all([...this.#kept.keys()].map((key) => this.#drop(key)));
    await Promise.all(this.#removing);
  }

  /** Takes the sandbox out of keeping now and removes it without waiting for that. */
  #dropLater(key: string): void {
    const removal = this.#drop(key);
    this.#removing.add(removal);
    void removal.finally(() => this.#removing.delete(removal));
  }

  async #drop(key: string): Promise<void> {
    const kept = this.#kept.get(key);
    if (kept === undefined) return;
    this.#kept.delete(key);
    clearTimeout(kept.timer);
    await Promise.all([
      kept.sandbox.destroy().catch((err: unknown) => {
        this.#options.log.warn({ err, taskId: kept.taskId }, 'removing a kept sandbox failed');
      }),
      this.#options.registry?.unmark(kept.taskId, kept.attempt).catch(() => undefined),
    ]);
  }
}

const keyOf = (taskId: string, attempt: number): string => `${taskId}#${attempt}`;
