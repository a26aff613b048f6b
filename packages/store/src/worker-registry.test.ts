import { afterAll, describe, expect, it } from 'vitest';
import { deletePrefix, testRedis, uniquePrefix } from './test-support.js';
import { WorkerRegistry } from './worker-registry.js';

const redis = testRedis();
const prefix = uniquePrefix('registry');
const registry = new WorkerRegistry({ redis, prefix });

afterAll(async () => {
  await deletePrefix(redis, prefix);
  redis.disconnect();
});

describe('WorkerRegistry', () => {
  it('knows a worker alive from its join to its leave', async () => {
    expect(await registry.isAlive('w1')).toBe(false);
    const member = await registry.join('w1');
    expect(await registry.isAlive('w1')).toBe(true);
    // A pooled sandbox (no task) is in use while its worker beats.
    expect(await registry.inUse({ workerId: 'w1', taskId: undefined }, 1, async () => false)).toBe(
      true,
    );
    await member.leave();
    expect(await registry.isAlive('w1')).toBe(false);
    expect(await registry.inUse({ workerId: 'w1', taskId: undefined }, 1, async () => false)).toBe(
      false,
    );
  });

  it("judges a task's sandbox in use while its worker keeps it or runs one of its attempts", async () => {
    const holder = { workerId: 'w2', taskId: 't-1' };
    const asked: number[] = [];
    const running = (which: number) => async (attempt: number) => {
      asked.push(attempt);
      return attempt === which;
    };
    expect(await registry.inUse(holder, 3, running(0))).toBe(false);
    expect(asked).toEqual([1, 2, 3]);
    expect(await registry.inUse(holder, 3, running(2))).toBe(true);
    await registry.markKept('t-1', 3, 'w2', 60_000);
    expect(await registry.inUse(holder, 3, running(0))).toBe(true);
    // Kept by another worker: not this holder's.
    expect(await registry.inUse({ workerId: 'w3', taskId: 't-1' }, 3, running(0))).toBe(false);
    await registry.unmarkKept('t-1', 3);
    expect(await registry.inUse(holder, 3, running(0))).toBe(false);
    await registry.markKept('t-1', 1, 'w2', 50);
    await new Promise((r) => setTimeout(r, 120));
    expect(await registry.inUse(holder, 1, running(0))).toBe(false);
  });
});
