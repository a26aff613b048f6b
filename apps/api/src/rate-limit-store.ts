import { deferToTurnEnd } from '@patchbay/core';
import type { Redis } from 'ioredis';

/**
 * Adds `n` to a fixed-window counter, starting its window when the key is new (or lost its
 * expiry); answers the count after the addition and the window's time left.
 */
const INCR_BY = `
local current = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == tonumber(ARGV[1]) or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {current, ttl}
`;

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;

interface RateLimitRedis extends Redis {
  patchbayRateIncrBy(key: string, n: number, windowMs: number): Promise<[number, number]>;
}

/**
 * A `@fastify/rate-limit` store on Redis that coalesces: while one count of a key is on its way
 * to Redis, the requests that arrive for the same key wait and then go together as one `INCRBY`,
 * each getting its own place in the count (the same numbers one `INCR` each would give, in
 * arrival order). Sequential requests cost one call each, as before; a burst of concurrent ones
 * from one tenant costs one call per Redis round trip instead of one per request, which is most
 * of the rate limit's share of Redis under load (bench/RESULTS.md, API).
 */
export class CoalescingRedisStore {
  readonly #redis: RateLimitRedis;
  readonly #prefix: string;
  /** Requests waiting for the next call, per key, in arrival order. */
  readonly #waiting = new Map<string, { callbacks: Callback[]; windowMs: number }>();
  readonly #inFlight = new Set<string>();

  constructor(redis: Redis, prefix: string) {
    if (!('patchbayRateIncrBy' in redis)) {
      redis.defineCommand('patchbayRateIncrBy', { numberOfKeys: 1, lua: INCR_BY });
    }
    this.#redis = redis as RateLimitRedis;
    this.#prefix = prefix;
  }

  incr(key: string, callback: Callback, windowMs: number): void {
    let waiting = this.#waiting.get(key);
    if (waiting === undefined) {
      waiting = { callbacks: [], windowMs };
      this.#waiting.set(key, waiting);
      // Requests read from the sockets in this turn of the event loop join this call too.
      if (!this.#inFlight.has(key)) deferToTurnEnd(() => this.#send(key));
    }
    waiting.callbacks.push(callback);
  }

  child(): CoalescingRedisStore {
    return this;
  }

  #send(key: string): void {
    const batch = this.#waiting.get(key);
    if (batch === undefined || this.#inFlight.has(key)) return;
    this.#waiting.delete(key);
    this.#inFlight.add(key);
    const n = batch.callbacks.length;
    const done = (err: Error | null, current = 0, ttl = 0): void => {
      this.#inFlight.delete(key);
      batch.callbacks.forEach((callback, i) =>
        err ? callback(err) : callback(null, { current: current - n + 1 + i, ttl }),
      );
      if (this.#waiting.has(key)) this.#send(key);
    };
    this.#redis.patchbayRateIncrBy(this.#prefix + key, n, batch.windowMs).then(
      ([current, ttl]) => done(null, current, ttl),
      (err: Error) => done(err),
    );
  }
}
