import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';

/** One event for one target, waiting its turn. */
export interface PendingDelivery {
  deliveryId: string;
  targetId: string;
  taskId: string;
  type: string;
  /** The JSON body, signed afresh on each try. */
  body: string;
  /** When it was first queued (ms): retries stop `retryMs` after it. */
  queuedAt: number;
}

/** The same delivery id for the same outbox entry and target, however often it is dispatched. */
export function deliveryIdOf(outboxId: string, targetId: string): string {
  return `whd_${createHash('sha256').update(`${outboxId} ${targetId}`).digest('hex').slice(0, 32)}`;
}

// Queue a delivery at the tail of its chain, once (a dispatch repeated after a crash finds its
// id seen). Returns 1 when it is the chain's head, so the caller starts its job.
const PUSH = `
if redis.call('SET', KEYS[3], '1', 'NX', 'EX', 604800) == false then return 0 end
local n = redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if n == 1 then return 1 end
return 0
`;

// Drop the head when it is the delivery named, and return the next head (or false).
const ADVANCE = `
local head = redis.call('LINDEX', KEYS[1], 0)
if head and cjson.decode(head).deliveryId == ARGV[1] then redis.call('LPOP', KEYS[1]) end
local next = redis.call('LINDEX', KEYS[1], 0)
if not next then redis.call('SREM', KEYS[2], ARGV[2]) end
return next
`;

/**
 * Deliveries queue per target and task, one chain each: only a chain's head is being sent, so a
 * receiver gets a task's events in outbox order even while one of them is being retried.
 */
export class DeliveryChains {
  readonly #redis: Redis;
  readonly #prefix: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = `${prefix}:webhooks`;
  }

  /** The chain a delivery belongs to. */
  static chainOf(d: Pick<PendingDelivery, 'targetId' | 'taskId'>): string {
    return `${d.targetId}.${d.taskId}`;
  }

  /** Appends; true when the delivery is its chain's head now (nothing before it waits). */
  async push(d: PendingDelivery): Promise<boolean> {
    const chain = DeliveryChains.chainOf(d);
    const head = await this.#redis.eval(
      PUSH,
      3,
      this.#chainKey(chain),
      `${this.#prefix}:chains`,
      `${this.#prefix}:seen:${d.deliveryId}`,
      JSON.stringify(d),
      chain,
    );
    return head === 1;
  }

  async head(chain: string): Promise<PendingDelivery | null> {
    const raw = await this.#redis.lindex(this.#chainKey(chain), 0);
    return raw === null ? null : (JSON.parse(raw) as PendingDelivery);
  }

  /** Takes `deliveryId` off its chain's head; the next head, if any. */
  async advance(chain: string, deliveryId: string): Promise<PendingDelivery | null> {
    const next = (await this.#redis.eval(
      ADVANCE,
      2,
      this.#chainKey(chain),
      `${this.#prefix}:chains`,
      deliveryId,
      chain,
    )) as string | null;
    return next === null ? null : (JSON.parse(next) as PendingDelivery);
  }

  /** Every chain with deliveries waiting. */
  async chains(): Promise<string[]> {
    return this.#redis.smembers(`${this.#prefix}:chains`);
  }

  #chainKey(chain: string): string {
    return `${this.#prefix}:chain:${chain}`;
  }
}
