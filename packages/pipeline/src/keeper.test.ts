import { silentLogger } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { SandboxKeeper } from './keeper.js';
import { FakeSandbox } from './test-support.js';

const sandbox = (name: string) => new FakeSandbox(name, { image: 'i', taskId: name });

describe('SandboxKeeper', () => {
  it("keeps a turn's sandbox until taken, and removes the task's others then", async () => {
    const keeper = new SandboxKeeper({ keepAliveMs: 60_000, maxKept: 4, log: silentLogger });
    const [a1, a2] = [sandbox('a1'), sandbox('a2')];
    await keeper.keep('t', 1, 1, a1);
    await keeper.keep('t', 1, 2, a2);
    expect(await keeper.take('t', 1, 2)).toBe(a2);
    expect(a1.destroyed).toBe(true);
    expect(keeper.size).toBe(0);
    // One kept for another turn is not handed out.
    const old = sandbox('old');
    await keeper.keep('u', 1, 1, old);
    expect(await keeper.take('u', 2, 1)).toBeUndefined();
    expect(old.destroyed).toBe(true);
    await keeper.close();
  });

  it('removes the oldest past its cap, all on close, and keeps none when off', async () => {
    const keeper = new SandboxKeeper({ keepAliveMs: 60_000, maxKept: 2, log: silentLogger });
    const boxes = [sandbox('x'), sandbox('y'), sandbox('z')];
    for (const [i, box] of boxes.entries()) await keeper.keep(`t${i}`, 1, 1, box);
    expect(boxes.map((b) => b.destroyed)).toEqual([true, false, false]);
    await keeper.close();
    expect(boxes.every((b) => b.destroyed)).toBe(true);
    expect(await keeper.keep('t', 1, 1, sandbox('late'))).toBe(false);
    const off = new SandboxKeeper({ keepAliveMs: 0, maxKept: 2, log: silentLogger });
    expect(await off.keep('t', 1, 1, sandbox('off'))).toBe(false);
  });

  it('removes a sandbox whose follow-up went on elsewhere when it sweeps, and lets a window close', async () => {
    const stale = new Set<string>();
    const keeper = new SandboxKeeper({
      keepAliveMs: 150,
      maxKept: 4,
      log: silentLogger,
      isStale: (taskId) => Promise.resolve(stale.has(taskId)),
      sweepMs: 60_000,
    });
    const [mine, theirs] = [sandbox('mine'), sandbox('theirs')];
    await keeper.keep('mine', 1, 1, mine);
    await keeper.keep('theirs', 1, 1, theirs);
    stale.add('theirs');
    await keeper.sweep();
    expect([mine.destroyed, theirs.destroyed]).toEqual([false, true]);
    await new Promise((r) => setTimeout(r, 300));
    expect(mine.destroyed).toBe(true);
    expect(keeper.size).toBe(0);
    await keeper.close();
  });
});
