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
