import { deferToTurnEnd } from '@patchbay/core';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { TaskQueue } from './task-queue.js';
import { createRedis, whenReady } from './redis.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './test-support.js';

const clients: Redis[] = [];
let prefix = '';

afterEach(async () => {
  if (clients[0]) await deletePrefix(clients[0], prefix);
  await Promise.all(clients.splice(0).map((c) => c.quit()));
});

async function client(coalesceWrites: boolean): Promise<Redis> {
  const redis = createRedis({ url: REDIS_URL, name: 'redis-test', coalesceWrites });
  clients.push(redis);
  expect(await whenReady(redis, 5000)).toBe(true);
  return redis;
}

/** Counts the writes the client's socket makes from here on. */
function countWrites(redis: Redis): () => number {
  const socket = redis.stream as unknown as Record<'_write' | '_writev', (...a: unknown[]) => void>;
  let writes = 0;
  for (const method of ['_write', '_writev'] as const) {
    const original = socket[method];
    socket[method] = function (this: unknown, ...args: unknown[]) {
      writes++;
      original.apply(this, args);
    };
  }
  return () => writes;
}

describe('createRedis with coalesceWrites', () => {
  it("sends one turn's commands in one write, each answered as on its own", async () => {
    prefix = uniquePrefix('coalesce');
    const [coalescing, plain] = [await client(true), await client(false)];
    const results: Record<string, unknown[]> = {};
    const writes: Record<string, number> = {};
    for (const [name, redis] of [
      ['coalescing', coalescing],
      ['plain', plain],
    ] as const) {
      const written = countWrites(redis);
      const key = `${prefix}:${name}`;
      results[name] = await Promise.all(
        Array.from({ length: 40 }, (_, i) =>
          i % 4 === 0
            ? redis.incr(`${key}:n`)
            : i % 4 === 1
              ? redis.set(`${key}:${i}`, `v${i}`)
              : i % 4 === 2
                ? redis.eval('return ARGV[1] .. KEYS[1]', 1, `${key}:${i}`, 'k=')
                : redis.hget(`${key}:missing`, 'f').catch((e: unknown) => e),
        ),
      );
      writes[name] = written();
    }
    expect(results['coalescing']).toEqual(
      results['plain']?.map((r) =>
        typeof r === 'string' ? r.replace(':plain:', ':coalescing:') : r,
      ),
    );
    expect(writes).toEqual({ coalescing: 1, plain: 40 });
  });

  it("sends what the turn's end issues with it, not a turn later", async () => {
    prefix = uniquePrefix('coalesce');
    const redis = await client(true);
    const written = countWrites(redis);
    // A batch flushed at the turn's end (as the Batcher does) is written before the next
    // callback of that same end runs; uncorking at another setImmediate would leave it a turn.
    const seen = await new Promise<number>((resolve, reject) => {
      deferToTurnEnd(() => {
        Promise.all([redis.set(`${prefix}:a`, '1'), redis.incr(`${prefix}:n`)]).catch(reject);
      });
      setImmediate(() => resolve(written()));
    });
    expect(seen).toBe(1);
    expect(await redis.mget(`${prefix}:a`, `${prefix}:n`)).toEqual(['1', '1']);
    expect(written()).toBe(2);
  });

  it('coalesces on the new socket after a reconnect', async () => {
    prefix = uniquePrefix('coalesce');
    const redis = await client(true);
    await redis.set(`${prefix}:a`, '1');
    redis.stream.destroy();
    await new Promise((resolve) => redis.once('ready', resolve));
    const written = countWrites(redis);
    const values = await Promise.all(Array.from({ length: 10 }, () => redis.get(`${prefix}:a`)));
    expect(values).toEqual(Array(10).fill('1'));
    expect(written()).toBe(1);
  });

  it('carries BullMQ adds of concurrent submits in one write', async () => {
    prefix = uniquePrefix('coalesce');
    const redis = await client(true);
    const queue = new TaskQueue({ connection: redis, prefix });
    await queue.counts();
    const written = countWrites(redis);
    const ids = Array.from(
      { length: 16 },
      (_, i) => `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    );
    await Promise.all(ids.map((id) => queue.enqueue(id)));
    expect(written()).toBe(1);
    expect((await queue.counts()).waiting).toBe(16);
    await queue.close();
  });
});
