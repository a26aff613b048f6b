import type { Redis } from 'ioredis';
import { StoreKeys } from './keys.js';

/** A beat's lifetime: a worker that missed three beats is taken for dead. */
const HEARTBEAT_TTL_MS = 30_000;

/** Who a sandbox belongs to, as far as the registry judges it (the reaper's question). */
export interface SandboxHolder {
  workerId: string;
  /** Undefined for a warm-pool sandbox: no task yet. */
  taskId: string | undefined;
}

/**
 * How workers on any number of hosts know of one another through Redis: each beats while it
 * lives, and says which task attempts' sandboxes it keeps for a follow-up. From these (and the
 * queue's view of running jobs) any worker's reaper can tell whether a sandbox another worker
 * left is still in use.
 */
export class WorkerRegistry {
  readonly #redis: Redis;
  readonly #keys: StoreKeys;

  constructor(options: { redis: Redis; prefix: string }) {
    this.#redis = options.redis;
    this.#keys = new StoreKeys(options.prefix);
  }

  /**
   * Beats now and every third of the beat's lifetime until the returned stop (which also takes
   * the worker out at once).
   */
  async join(workerId: string): Promise<{ leave(): Promise<void> }> {
    const beat = (): Promise<unknown> =>
      this.#redis.set(
        this.#keys.worker(workerId),
        new Date().toISOString(),
        'PX',
        HEARTBEAT_TTL_MS,
      );
    await beat();
    const timer = setInterval(() => void beat().catch(() => undefined), HEARTBEAT_TTL_MS / 3);
    timer.unref();
    return {
      leave: async () => {
        clearInterval(timer);
        await this.#redis.del(this.#keys.worker(workerId)).catch(() => undefined);
      },
    };
  }

  async isAlive(workerId: string): Promise<boolean> {
    return (await this.#redis.exists(this.#keys.worker(workerId))) === 1;
  }

  /** `workerId` keeps the attempt's sandbox for `ttlMs`. */
  async markKept(taskId: string, attempt: number, workerId: string, ttlMs: number): Promise<void> {
    await this.#redis.set(this.#keys.kept(taskId, attempt), workerId, 'PX', ttlMs);
  }

  async unmarkKept(taskId: string, attempt: number): Promise<void> {
    await this.#redis.del(this.#keys.kept(taskId, attempt));
  }

  /**
   * Whether a sandbox `holder` left is still in use: a pooled one while its worker beats; a
   * task's while that worker keeps it for a follow-up, or `isRunning` (the queue's view) says
   * that worker runs one of the task's attempts.
   */
  async inUse(
    holder: SandboxHolder,
    attempts: number,
    isRunning: (attempt: number) => Promise<boolean>,
  ): Promise<boolean> {
    const { taskId, workerId } = holder;
    if (taskId === undefined) return this.isAlive(workerId);
    const numbers = Array.from({ length: Math.max(1, attempts) }, (_, i) => i + 1);
    const keepers = await this.#redis.mget(numbers.map((n) => this.#keys.kept(taskId, n)));
    if (keepers.includes(workerId)) return true;
    for (const n of numbers) if (await isRunning(n)) return true;
    return false;
  }
}
