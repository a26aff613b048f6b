import { deferToTurnEnd } from '@patchbay/core';
import type { Redis } from 'ioredis';

/**
 * Adds to fixed-window counters, starting a counter's window when its key is new (or lost its
 * expiry); answers each count after the addition and its window's time left.
 */
const COUNT = `
-- KEYS: the counters; ARGV: per counter, what to add and its window in ms
local answers = {}
for i, key in ipairs(KEYS) do
  local n = ARGV[2 * i - 1]
  local current = redis.call('INCRBY', key, n)
  local ttl = redis.call('PTTL', key)
  if current == tonumber(n) or ttl < 0 then
    redis.call('PEXPIRE', key, ARGV[2 * i])
    ttl = tonumber(ARGV[2 * i])
  end
  answers[i] = {current, ttl}
end
return answers
`;

type Callback = (err: Error | null, result?: { current: number; ttl: number }) => void;

interface RateLimitRedis extends Redis {
  patchbayRateCount(
    keys: number,
    ...keysThenCountsAndWindows: (string | number)[]
  ): Promise<[current: number, ttl: number][]>;
}

interface Waiting {
  callbacks: Callback[];
  windowMs: number;
}

/**
 * A `@fastify/rate-limit` store on Redis that coalesces: while one count of a key is on its way
 * to Redis, the requests that arrive for the same key wait and then go together as one `INCRBY`,
 * each getting its own place in the count (the same numbers one `INCR` each would give, in
 * arrival order); and the counts of all keys ready at the end of an event-loop turn go in one
 * call. Sequential requests cost one call each, as before; a burst of concurrent ones costs one
 * call per turn however many tenants they come from, instead of one per request, which was most
 * of the rate limit's share of Redis under load (bench/RESULTS.md, API).
 */
export class CoalescingRedisStore {
  readonly #redis: RateLimitRedis;
  readonly #prefix: string;
  /** Requests waiting for the next call, per key, in arrival order. */
  readonly #waiting = new Map<string, Waiting>();
  /** Keys whose count is on its way: their waiting requests go in a call after its answer. */
  readonly #inFlight = new Set<string>();
  #sendScheduled = false;

  constructor(redis: Redis, prefix: string) {
    if (!('patchbayRateCount' in redis)) redis.defineCommand('patchbayRateCount', { lua: COUNT });
    this.#redis = redis as RateLimitRedis;
    this.#prefix = prefix;
  }

  incr(key: string, callback: Callback, windowMs: number): void {
    let waiting = this.#waiting.get(key);
    if (waiting === undefined) {
      waiting = { callbacks: [], windowMs };
      this.#waiting.set(key, waiting);
      if (!this.#inFlight.has(key)) this.#sendAtTurnEnd();
    }
    waiting.callbacks.push(callback);
  }

  child(): CoalescingRedisStore {
    return this;
  }

  /** Requests read from the sockets in this turn of the event loop join the call too. */
  #sendAtTurnEnd(): void {
    if (this.#sendScheduled) return;
    this.#sendScheduled = true;
    deferToTurnEnd(() => {
      this.#sendScheduled = false;
      this.#send();
    });
  }

  #send(): void {
    const keys: string[] = [];
    const batches: Waiting[] = [];
    for (const [key, batch] of this.#waiting) {
      if (this.#inFlight.has(key)) continue;
      this.#waiting.delete(key);
      this.#inFlight.add(key);
      keys.push(key);
      batches.push(batch);
    }
    if (keys.length === 0) return;
    const done = (failure: Error | null, answers: [number, number][] = []): void => {
      const err =
        failure ??
        (answers.length === keys.length
          ? null
          : new Error(`${keys.length} counts sent, ${answers.length} answered`));
      for (const key of keys) this.#inFlight.delete(key);
      batches.forEach((batch, i) => {
        const [current, ttl] = answers[i] ?? [0, 0];
        const n = batch.callbacks.length;
        batch.callbacks.forEach((callback, j) =>
          err ? callback(err) : callback(null, { current: current - n + 1 + j, ttl }),
        );
      });
      if (keys.some((key) => this.#waiting.has(key))) this.#sendAtTurnEnd();
    };
    this.#redis
      .patchbayRateCount(
        keys.length,
        ...keys.map((key) => this.#prefix + key),
        ...batches.flatMap((batch) => [batch.callbacks.length, batch.windowMs]),
      )
      .then(
        (answers) => done(null, answers),
        (err: Error) => done(err),
      );
  }
}
