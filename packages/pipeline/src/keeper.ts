import type { Logger } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

/** Where the worker says which kept sandboxes it holds, so other workers' reapers spare them. */
export interface KeptRegistry {
  mark(taskId: string, ttlMs: number): Promise<void>;
  unmark(taskId: string): Promise<void>;
}

export interface SandboxKeeperOptions {
  /** How long a sandbox is kept after its turn ended; 0 keeps none. */
  keepAliveMs: number;
  /** Most sandboxes kept at once by this worker; past it the oldest goes. */
  maxKept: number;
  registry?: KeptRegistry;
  log: Logger;
}

interface Kept {
  sandbox: Sandbox;
  turn: number;
  timer: NodeJS.Timeout;
}

/**
 * Sandboxes kept alive for a short while after a turn ended, so that a quick follow-up goes on
 * in the same container: no fetch, no setup. A kept sandbox holds no running task (the task has
 * ended), so it counts against this worker's cap of kept sandboxes (`maxKept`), not against the
 * tenant's active tasks. It is removed when its window closes, when a newer one needs its place,
 * when the worker closes, or when its follow-up runs elsewhere and it is never taken.
 */
export class SandboxKeeper {
  readonly #options: SandboxKeeperOptions;
  /** In the order they were kept, oldest first. */
  readonly #kept = new Map<string, Kept>();
  #closed = false;

  constructor(options: SandboxKeeperOptions) {
    this.#options = options;
  }

  /** Sandboxes kept now. */
  get size(): number {
    return this.#kept.size;
  }

  /**
   * Keeps the sandbox of a task's ended turn; false when keeping is off or closed (the caller
   * removes it then).
   */
  async keep(taskId: string, turn: number, sandbox: Sandbox): Promise<boolean> {
    const { keepAliveMs, maxKept } = this.#options;
    if (this.#closed || keepAliveMs <= 0 || maxKept <= 0) return false;
    await this.#drop(taskId);
    while (this.#kept.size >= maxKept) {
      const oldest = this.#kept.keys().next().value;
      if (oldest === undefined) break;
      await this.#drop(oldest);
    }
    const timer = setTimeout(() => void this.#drop(taskId), keepAliveMs);
    timer.unref();
    this.#kept.set(taskId, { sandbox, turn, timer });
    await this.#options.registry?.mark(taskId, keepAliveMs).catch((err: unknown) => {
      this.#options.log.warn({ err, taskId }, 'recording a kept sandbox failed');
    });
    return true;
  }

  /**
   * The sandbox kept after turn `turn` of the task, taken out of keeping (the caller owns it
   * now); undefined when there is none, or it is from another turn, or it broke meanwhile.
   */
  async take(taskId: string, turn: number): Promise<Sandbox | undefined> {
    const kept = this.#kept.get(taskId);
    if (kept === undefined) return undefined;
    this.#kept.delete(taskId);
    clearTimeout(kept.timer);
    await this.#options.registry?.unmark(taskId).catch(() => undefined);
    if (kept.turn !== turn || kept.sandbox.broken) {
      await kept.sandbox.destroy().catch(() => undefined);
      return undefined;
    }
    return kept.sandbox;
  }

  /** Removes every kept sandbox and keeps no more. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#kept.keys()].map((taskId) => this.#drop(taskId)));
  }

  async #drop(taskId: string): Promise<void> {
    const kept = this.#kept.get(taskId);
    if (kept === undefined) return;
    this.#kept.delete(taskId);
    clearTimeout(kept.timer);
    await Promise.all([
      kept.sandbox.destroy().catch((err: unknown) => {
        this.#options.log.warn({ err, taskId }, 'removing a kept sandbox failed');
      }),
      this.#options.registry?.unmark(taskId).catch(() => undefined),
    ]);
  }
}
