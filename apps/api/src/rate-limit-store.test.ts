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

/** The counts of each call the store makes, per key, until `restore`. */
function spyOnCalls(): { calls: number[][]; restore: () => void } {
  const calls: number[][] = [];
  const counted = redis as unknown as { patchbayRateCount: (...a: unknown[]) => unknown };
  const original = counted.patchbayRateCount.bind(redis);
  counted.patchbayRateCount = (...args: unknown[]) => {
    const keys = args[0] as number;
    calls.push(args.slice(1 + keys).filter((_, i) => i % 2 === 0) as number[]);
    return original(...args);
  };
  return { calls, restore: () => (counted.patchbayRateCount = original) };
}

describe('the coalescing rate-limit store', () => {
  it('gives concurrent requests the counts one INCR each would, in one call per round trip', async () => {
    const store = new CoalescingRedisStore(redis, `${prefix}:`);
    const { calls, restore } = spyOnCalls();
    try {
      const burst = await Promise.all(Array.from({ length: 50 }, () => incr(store, 'acme')));
      expect(burst.map((c) => c.current)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      expect(calls.flat().reduce((a, b) => a + b, 0)).toBe(50);
      expect(calls.length).toBeLessThanOrEqual(2);
      for (const c of burst) expect(c.ttl).toBeGreaterThan(55_000);
      // One after another: one call each, counting on.
      expect((await incr(store, 'acme')).current).toBe(51);
      expect((await incr(store, 'acme')).current).toBe(52);
      expect(calls.slice(-2)).toEqual([[1], [1]]);
      // Another key, another count; the window was set on the key.
      expect((await incr(store, 'umbrella')).current).toBe(1);
      expect(await redis.pttl(`${prefix}:acme`)).toBeGreaterThan(55_000);
    } finally {
      restore();
    }
  });

  it("counts all tenants' concurrent requests in one call per turn", async () => {
    const store = new CoalescingRedisStore(redis, `${prefix}:`);
    const { calls, restore } = spyOnCalls();
    try {
      const tenants = Array.from({ length: 10 }, (_, i) => `tenant-${i}`);
      const counts = await Promise.all(
        Array.from({ length: 30 }, (_, i) => incr(store, tenants[i % 10]!)),
      );
      expect(calls).toEqual([Array(10).fill(3)]);
      expect(counts.map((c) => c.current)).toEqual(
        Array.from({ length: 30 }, (_, i) => Math.floor(i / 10) + 1),
      );
      expect(await redis.get(`${prefix}:tenant-9`)).toBe('3');
    } finally {
      restore();
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
