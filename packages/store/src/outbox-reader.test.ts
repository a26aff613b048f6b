import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OutboxReader, type OutboxEntry } from './outbox-reader.js';
import { RedisTaskStore } from './redis-task-store.js';
import { deletePrefix, makeTask, testRedis, uniquePrefix } from './test-support.js';

let redis: Redis;
let prefix: string;
let store: RedisTaskStore;
const readers: OutboxReader[] = [];

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  prefix = uniquePrefix('outbox');
  store = new RedisTaskStore({ redis, prefix });
});
afterEach(async () => {
  await Promise.all(readers.splice(0).map((r) => r.close()));
  await deletePrefix(redis, prefix);
});

function reader(consumer: string, seen: OutboxEntry[], fail?: (e: OutboxEntry) => boolean) {
  const r = new OutboxReader({
    redis,
    blocking: testRedis(),
    prefix,
    name: 'test',
    consumer,
    blockMs: 100,
    leaseMs: 600,
    handle: async (entry) => {
      if (fail?.(entry)) throw new Error('not now');
      seen.push(entry);
    },
  });
  readers.push(r);
  return r;
}

async function until(check: () => boolean): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('OutboxReader', () => {
  it('reads what is written after its cursor was set, in order, one process at a time, and goes on where it stopped', async () => {
    const before = makeTask();
    await store.create(before);
    await OutboxReader.ensureCursor(redis, prefix, 'test');
    const a: OutboxEntry[] = [];
    const b: OutboxEntry[] = [];
    reader('a', a).start();
    reader('b', b).start();
    const tasks = Array.from({ length: 5 }, () => makeTask());
    for (const t of tasks) await store.create(t);
    await store.update(tasks[0]!.id, (t) => ({ ...t, status: 'running' }));
    await until(() => a.length + b.length >= 6);
    const seen = [...a, ...b];
    // Only one of the two read (the lease), nothing from before the cursor, in outbox order.
    expect(a.length === 0 || b.length === 0).toBe(true);
    expect(seen.map((e) => e.event.taskId)).toEqual([...tasks.map((t) => t.id), tasks[0]!.id]);
    expect(seen.at(-1)!.event.type).toBe('task.started');
    const ids = seen.map((e) => e.id);
    expect([...ids].sort()).toEqual(ids);

    // The reader that held the lease stops; the other takes over from the cursor.
    const [holder] = a.length > 0 ? [readers[0]!] : [readers[1]!];
    await holder.close();
    const more = makeTask();
    await store.create(more);
    await until(() => [...a, ...b].some((e) => e.event.taskId === more.id));
    expect([...a, ...b].filter((e) => e.event.taskId === more.id)).toHaveLength(1);
  });

  it('hands an entry whose handling failed to the next try, before any later one', async () => {
    await OutboxReader.ensureCursor(redis, prefix, 'test');
    const seen: OutboxEntry[] = [];
    let failures = 2;
    reader('a', seen, () => failures-- > 0).start();
    const [x, y] = [makeTask(), makeTask()];
    await store.create(x);
    await store.create(y);
    await until(() => seen.length >= 2);
    expect(seen.map((e) => e.event.taskId)).toEqual([x.id, y.id]);
  });

  it('writes a lifecycle event with a change to an ended record when asked (a delivery), and none otherwise', async () => {
    const task = makeTask({ status: 'succeeded', finishedAt: new Date().toISOString() });
    await store.create(task);
    const count = async () => (await store.lifecycleEvents()).length;
    const start = await count();
    await store.rewriteEnded(task.id, (t) => ({ ...t, prompt: 'changed' }));
    expect(await count()).toBe(start);
    await store.rewriteEnded(task.id, (t) => t, { lifecycle: 'task.delivered' });
    const events = await store.lifecycleEvents();
    expect(events).toHaveLength(start + 1);
    expect(events.at(-1)!.event).toMatchObject({
      type: 'task.delivered',
      taskId: task.id,
      status: 'succeeded',
    });
  });
});
