import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from './fs-artifact-store.js';
import { TaskLifecycle } from './lifecycle.js';
import { RedisEventLog } from './redis-event-log.js';
import { RedisTaskStore } from './redis-task-store.js';
import { deletePrefix, makeTask, testRedis, uniquePrefix } from './test-support.js';

let redis: Redis;
let prefix: string;
let store: RedisTaskStore;
let events: RedisEventLog;
let lifecycle: TaskLifecycle;

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  prefix = uniquePrefix('lifecycle');
  store = new RedisTaskStore({ redis, prefix });
  events = new RedisEventLog({
    redis,
    prefix,
    artifacts: new FsArtifactStore({ root: join(tmpdir(), `patchbay-lifecycle-${prefix}`) }),
    createBlockingConnection: testRedis,
  });
  lifecycle = new TaskLifecycle({ store, events });
});
afterEach(async () => {
  await deletePrefix(redis, prefix);
});

const queued = { type: 'status', status: 'queued', phase: null } as const;

describe("a task's first event", () => {
  it('waits in the head, not in a stream, until the first append puts it in the stream as seq 1', async () => {
    const task = makeTask();
    await store.create(task, { firstEvent: queued });
    const stream = `${prefix}:events:${task.id}`;
    // A submit creates no stream; the log reads and follows from its head.
    expect(await redis.exists(stream)).toBe(0);
    const first = { seq: 1, type: 'status', status: 'queued', phase: null };
    expect(await events.read(task.id)).toEqual([expect.objectContaining(first)]);
    expect(await events.read(task.id, { after: 1 })).toEqual([]);
    // The head is seq 1 without a counter: the log's last seq reads 1 before any append.
    expect(await redis.exists(`${prefix}:events:${task.id}:seq`)).toBe(0);
    expect(await events.append(task.id, [])).toBe(1);
    const follower = events.follow(task.id);
    expect((await follower.next()).value).toMatchObject(first);
    const next = follower.next();

    expect(await events.append(task.id, { type: 'phase', phase: 'fetch' })).toBe(2);
    expect((await next).value).toMatchObject({ seq: 2, type: 'phase', phase: 'fetch' });
    const entries = await redis.xrange(stream, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(['0-1', '0-2']);
    expect((await events.read(task.id)).map((e) => e.seq)).toEqual([1, 2]);

    // Ending archives the whole log, the head with it.
    await lifecycle.end(task.id, { status: 'cancelled', error: null });
    await follower.return(undefined);
    expect(await redis.exists(`${prefix}:events:${task.id}:head`)).toBe(0);
    expect((await events.read(task.id)).map((e) => [e.seq, e.type])).toEqual([
      [1, 'status'],
      [2, 'phase'],
      [3, 'status'],
    ]);
  });
});

describe('ending while the artifact store is down', () => {
  it('keeps the end it wrote and the whole log in Redis, without an expiry', async () => {
    const down = {
      put: () => Promise.reject(new Error('store down')),
      get: () => Promise.reject(new Error('store down')),
      remove: () => Promise.reject(new Error('store down')),
    };
    const unarchived = new RedisEventLog({
      redis,
      prefix,
      artifacts: down,
      createBlockingConnection: testRedis,
    });
    const task = makeTask();
    await store.create(task, { firstEvent: queued });
    const ended = await new TaskLifecycle({ store, events: unarchived }).end(task.id, {
      status: 'cancelled',
      error: { code: 'cancelled', message: 'cancelled before it started' },
    });
    expect(ended?.status).toBe('cancelled');
    expect((await store.get(task.id))?.status).toBe('cancelled');
    expect((await unarchived.read(task.id)).map((e) => e.type)).toEqual(['status', 'status']);
    expect(await redis.ttl(`${prefix}:events:${task.id}`)).toBe(-1);
  });
});

describe('the lifecycle outbox', () => {
  it('gets one event per status change, written with the change, and none for other updates', async () => {
    const task = makeTask({ tenant: 'acme' });
    await store.create(task, { firstEvent: queued, secrets: { TOKEN: 's3cret' } });
    await store.update(task.id, (t) => ({ ...t, phase: 'fetch' }));
    await store.update(task.id, (t) => ({ ...t, status: 'running', phase: 'agent' }));
    await store.update(task.id, (t) => ({ ...t, phase: 'collect' }));
    const ended = await lifecycle.end(task.id, {
      status: 'failed',
      error: { code: 'verify_failed', message: 'verify exited with 1' },
    });
    expect(ended?.error).toEqual({
      code: 'verify_failed',
      message: 'verify exited with 1',
      phase: 'collect',
    });
    const outbox = await store.lifecycleEvents();
    expect(outbox.map((e) => e.event)).toEqual([
      expect.objectContaining({ type: 'task.queued', taskId: task.id, tenant: 'acme' }),
      expect.objectContaining({ type: 'task.started', status: 'running', errorCode: null }),
      expect.objectContaining({
        type: 'task.failed',
        status: 'failed',
        errorCode: 'verify_failed',
      }),
    ]);
    // Read on from an entry id: nothing repeats.
    expect(await store.lifecycleEvents({ after: outbox[1]!.id })).toEqual([outbox[2]]);
  });

  it('ends a task once: the status event is the log last, the secrets go, a second end changes nothing', async () => {
    const task = makeTask();
    await store.create(task, { firstEvent: queued, secrets: { TOKEN: 's3cret' } });
    await events.append(task.id, { type: 'phase', phase: 'fetch' });
    const [first, second] = await Promise.all([
      lifecycle.end(task.id, {
        status: 'cancelled',
        error: { code: 'cancelled', message: 'cancelled before it started' },
      }),
      lifecycle.end(task.id, { status: 'succeeded', error: null }),
    ]);
    // Exactly one of two racing ends wins; the other finds the task ended.
    expect([first, second].filter((t) => t !== null)).toHaveLength(1);
    const winner = (first ?? second)!;
    const log = await events.read(task.id);
    expect(log.at(-1)).toMatchObject({ type: 'status', status: winner.status });
    expect(log.filter((e) => e.type === 'status' && e.status !== 'queued')).toHaveLength(1);
    expect(await store.secrets(task.id)).toEqual({});
    expect((await store.get(task.id))?.finishedAt).toEqual(expect.any(String));
    const types = (await store.lifecycleEvents()).map((e) => e.event.type);
    expect(types.filter((t) => t !== 'task.queued')).toEqual([`task.${winner.status}`]);
    expect(await lifecycle.end(task.id, { status: 'succeeded', error: null })).toBeNull();
    expect(await store.lifecycleEvents()).toHaveLength(2);
  });
});

describe('reopening an ended task (a follow-up)', () => {
  const result = {
    summary: 'done',
    files: [{ path: 'a.txt', status: 'added' as const, additions: 1, deletions: 0 }],
    additions: 1,
    deletions: 0,
    patchBytes: 10,
    verify: null,
    stopReason: 'completed',
  };

  async function endedTask(outcome: Parameters<TaskLifecycle['end']>[1]) {
    const task = makeTask({ tenant: 'acme' });
    await store.create(task, { firstEvent: queued });
    await store.update(task.id, (t) => ({ ...t, status: 'running', phase: 'agent' }));
    await events.append(task.id, { type: 'phase', phase: 'agent' });
    return (await lifecycle.end(task.id, outcome))!;
  }

  it('takes the task back to queued with turn 2, its log carrying on, one lifecycle event', async () => {
    const ended = await endedTask({
      status: 'succeeded',
      error: null,
      result,
      turnResult: result,
    });
    expect(ended.turns).toEqual([
      expect.objectContaining({ n: 1, status: 'succeeded', result, error: null }),
    ]);
    const before = await store.lifecycleEvents();
    const reopened = await lifecycle.reopen(ended, 'Also handle the empty string.', {
      maxActive: 5,
    });
    expect(reopened).toMatchObject({ status: 'queued', turn: 2, finishedAt: null, error: null });
    expect(reopened.result).toEqual(result);
    expect(reopened.turns.map((t) => [t.n, t.status, t.prompt])).toEqual([
      [1, 'succeeded', 'Fix the bug.'],
      [2, 'queued', 'Also handle the empty string.'],
    ]);
    const log = await events.read(ended.id);
    expect(log.map((e) => [e.seq, e.type])).toEqual([
      [1, 'status'],
      [2, 'phase'],
      [3, 'status'],
      [4, 'turn'],
      [5, 'status'],
    ]);
    expect(log[3]).toMatchObject({
      type: 'turn',
      turn: 2,
      prompt: 'Also handle the empty string.',
    });
    // The stream no longer expires: it is live again until the turn ends.
    expect(await redis.ttl(`${prefix}:events:${ended.id}`)).toBe(-1);
    const after = await store.lifecycleEvents({ after: before.at(-1)!.id });
    expect(after.map((e) => e.event)).toEqual([
      expect.objectContaining({ type: 'turn.queued', status: 'queued', turn: 2 }),
    ]);
    expect(await store.countActive('acme')).toBe(1);

    // The second turn ends on its own: turn 1 keeps its result, the task gets turn 2's.
    await store.update(ended.id, (t) => ({ ...t, status: 'running' }));
    const second = await lifecycle.end(ended.id, {
      status: 'failed',
      error: { code: 'verify_failed', message: 'verify exited with 1' },
    });
    expect(second?.turns.map((t) => [t.n, t.status, t.result === null])).toEqual([
      [1, 'succeeded', false],
      [2, 'failed', true],
    ]);
    expect(second?.turns[1]?.error?.code).toBe('verify_failed');
  });

  it('puts an expired log back from the archive, so seqs go on from the last one', async () => {
    const ended = await endedTask({
      status: 'failed',
      error: { code: 'verify_failed', message: 'x' },
      result,
      turnResult: result,
    });
    await redis.del(`${prefix}:events:${ended.id}`, `${prefix}:events:${ended.id}:seq`);
    await lifecycle.reopen(ended, 'Fix the test name.');
    const log = await events.read(ended.id);
    expect(log.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(log[2]).toMatchObject({ type: 'status', status: 'failed' });
    expect(await events.append(ended.id, { type: 'phase', phase: 'fetch' })).toBe(6);
  });

  it('refuses a running, a cancelled and a resultless task with a conflict, writing nothing', async () => {
    const running = makeTask();
    await store.create(running, { firstEvent: queued });
    await expect(lifecycle.reopen(running, 'more')).rejects.toMatchObject({ code: 'conflict' });

    const cancelled = await endedTask({
      status: 'cancelled',
      error: { code: 'cancelled', message: 'cancelled while running' },
    });
    await expect(lifecycle.reopen(cancelled, 'more')).rejects.toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/cancelled/),
    });
    const resultless = await endedTask({
      status: 'failed',
      error: { code: 'setup_failed', message: 'setup exited with 1' },
    });
    await expect(lifecycle.reopen(resultless, 'more')).rejects.toMatchObject({
      code: 'conflict',
      details: { reason: 'no_workspace_result' },
    });
    expect((await store.get(resultless.id))?.status).toBe('failed');
    const types = (await store.lifecycleEvents()).map((e) => e.event.type);
    expect(types.filter((t) => t === 'turn.queued')).toEqual([]);
  });

  it('counts a follow-up against the tenant cap, and lets exactly one of two racing follow-ups in', async () => {
    const ended = await endedTask({ status: 'succeeded', error: null, result, turnResult: result });
    const other = makeTask({ tenant: 'acme' });
    await store.create(other, { firstEvent: queued });
    await expect(lifecycle.reopen(ended, 'more', { maxActive: 1 })).rejects.toMatchObject({
      code: 'rate_limited',
    });
    const outcomes = await Promise.allSettled([
      lifecycle.reopen(ended, 'first'),
      lifecycle.reopen(ended, 'second'),
    ]);
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect(outcomes.find((o) => o.status === 'rejected')).toMatchObject({
      reason: expect.objectContaining({ code: 'conflict' }),
    });
    const record = await store.get(ended.id);
    expect(record?.turns).toHaveLength(2);
    expect((await events.read(ended.id)).filter((e) => e.type === 'turn')).toHaveLength(1);
  });
});

describe('a turn of several attempts', () => {
  const resultOf = (files: number, passed: boolean) => ({
    summary: null,
    files: Array.from({ length: files }, (_, i) => ({
      path: `f${i}`,
      status: 'added' as const,
      additions: 1,
      deletions: 0,
    })),
    additions: files,
    deletions: 0,
    patchBytes: 10 * files,
    verify: { command: 't', exitCode: passed ? 0 : 1, passed, output: '' },
    stopReason: 'completed',
  });

  async function threeAttempts() {
    const record = makeTask({ tenant: 'acme', attempts: 3, models: ['a', 'b'] });
    await store.create(record, { firstEvent: queued, maxActive: 3 });
    await store.update(record.id, (t) => ({ ...t, status: 'running' }));
    return record;
  }

  it('ends the turn with the last attempt, on the attempt the rule picks, with one terminal event', async () => {
    const task = await threeAttempts();
    expect(task.turns[0]?.attempts.map((a) => [a.n, a.model])).toEqual([
      [1, 'a'],
      [2, 'b'],
      [3, 'a'],
    ]);
    expect(await store.countActive('acme')).toBe(3);
    const failed = { code: 'verify_failed' as const, message: 'verify exited with 1' };
    const first = await lifecycle.endAttempt(task.id, 1, {
      status: 'failed',
      error: failed,
      result: resultOf(1, false),
      turnResult: resultOf(1, false),
    });
    expect(first?.status).toBe('running');
    // The last two end at once: exactly one of them ends the turn.
    await Promise.all([
      lifecycle.endAttempt(task.id, 2, {
        status: 'succeeded',
        error: null,
        result: resultOf(3, true),
        turnResult: resultOf(3, true),
      }),
      lifecycle.endAttempt(task.id, 3, {
        status: 'failed',
        error: { code: 'model_error', message: 'x' },
      }),
    ]);
    const ended = (await store.get(task.id))!;
    expect(ended).toMatchObject({ status: 'succeeded', error: null });
    expect(ended.result?.selection).toMatchObject({
      chosen: 2,
      reason: 'attempt 2 (b) is the only attempt whose verify passed',
    });
    expect(ended.turns[0]?.chosen).toBe(2);
    expect(await store.countActive('acme')).toBe(0);
    // An attempt that ended already is left as it is.
    expect(await lifecycle.endAttempt(task.id, 1, { status: 'succeeded', error: null })).toBeNull();
    const types = (await store.lifecycleEvents()).map((e) => e.event.type);
    expect(
      types.filter((t) => t.startsWith('task.') && t !== 'task.queued' && t !== 'task.started'),
    ).toEqual(['task.succeeded']);
    // Each attempt's own log ends with its status; the task's log tells of each, then the turn.
    expect((await events.read(`${task.id}.t1.a3`)).at(-1)).toMatchObject({ status: 'failed' });
    const log = await events.read(task.id);
    expect(
      log
        .filter((e) => e.type === 'attempt')
        .map((e) => e.type === 'attempt' && e.attempt)
        .sort(),
    ).toEqual([1, 2, 3]);
    expect(log.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });

    // A user overrules the rule: attempt 1 becomes the result, the choice recorded.
    const chosen = await lifecycle.choose(ended, 1);
    expect(chosen).toMatchObject({ status: 'failed', error: { code: 'verify_failed' } });
    expect(chosen.result?.selection).toMatchObject({ chosen: 1, overruled: { ruleChose: 2 } });
    expect(chosen.turns[0]?.chosen).toBe(1);
    await expect(lifecycle.choose(chosen, 3)).rejects.toMatchObject({ code: 'conflict' });
    await expect(lifecycle.choose(chosen, 7)).rejects.toMatchObject({ code: 'not_found' });
    // Choosing the rule's pick again clears the overruling.
    expect((await lifecycle.choose(chosen, 2)).result?.selection?.overruled).toBeNull();
  });

  it('fails the turn with the first failure when no attempt collected a patch', async () => {
    const task = await threeAttempts();
    for (const n of [1, 2, 3])
      await lifecycle.endAttempt(task.id, n, {
        status: n === 2 ? 'cancelled' : 'failed',
        error: { code: n === 2 ? 'cancelled' : 'setup_failed', message: 'x' },
      });
    const ended = await store.get(task.id);
    expect(ended).toMatchObject({
      status: 'failed',
      error: { code: 'setup_failed' },
      result: null,
    });
  });
});
