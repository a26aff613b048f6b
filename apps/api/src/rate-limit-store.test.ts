import { REDIS_URL, deletePrefix, uniquePrefix } from '@patchbay/core/testing';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { CoalescingRedisStore } from './rate-limit-store.js';

const redis = new Redis(REDIS_URL);
const prefix = uniquePrefix('ratelimit');
afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

type Count = { current: number; ttl: number };
const incr = (store: CoalescingRedisStore, key: string): Promise<Count> =>
  new Promise((resolve, reject) =>
    store.incr(key, (err, result) => (err ? reject(err) : resolve(result!)), 60_000),
  );

describe('the coalescing rate-limit store', () => {
  it('gives concurrent requests the counts one INCR each would, in one call per round trip', async () => {
    const store = new CoalescingRedisStore(redis, `${prefix}:`);
    const calls: number[] = [];
    const counted = redis as unknown as { patchbayRateIncrBy: (...a: unknown[]) => unknown };
    const original = counted.patchbayRateIncrBy.bind(redis);
    counted.patchbayRateIncrBy = (...args: unknown[]) => {
      calls.push(args[1] as number);
      return original(...args);
    };
    try {
      const burst = await Promise.all(Array.from({ length: 50 }, () => incr(store, 'acme')));
      expect(burst.map((c) => c.current)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(calls.reduce((a, b) => a + b, 0)).toBe(50);
      expect(calls.length).toBeLessThanOrEqual(2);
      for (const c of burst) expect(c.ttl).toBeGreaterThan(55_000);
      // One after another: one call each, counting on.
      expect((await incr(store, 'acme')).current).toBe(51);
      expect((await incr(store, 'acme')).current).toBe(52);
      expect(calls.slice(-2)).toEqual([1, 1]);
      // Another key, another count; the window was set on the key.
      expect((await incr(store, 'umbrella')).current).toBe(1);
      expect(await redis.pttl(`${prefix}:acme`)).toBeGreaterThan(55_000);
    } finally {
      counted.patchbayRateIncrBy = original;
    }
  });

  it('hands a Redis failure to every waiting request, then works again', async () => {
    const broken = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0 });
    broken.disconnect();
    const store = new CoalescingRedisStore(broken, `${prefix}:`);
    const results = await Promise.allSettled([incr(store, 'x'), incr(store, 'x')]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    const working = new CoalescingRedisStore(redis, `${prefix}:`);
    expect((await incr(working, 'x')).current).toBe(1);
  });
});
