import {
  DEFAULT_CACHE_KEY,
  EMPTY_USAGE,
  isPatchbayError,
  newTurn,
  type Task,
} from '@patchbay/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RedisTaskStore } from './redis-task-store.js';
import { deletePrefix, makeTask, testRedis, uniquePrefix } from './test-support.js';

let redis: Redis;
let prefix: string;
let store: RedisTaskStore;

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(() => {
  prefix = uniquePrefix('codec');
  store = new RedisTaskStore({ redis, prefix });
});
afterEach(async () => {
  await deletePrefix(redis, prefix);
});

/** A task as a submit makes it: server defaults everywhere, turn 1 queued. */
function newTask(): Task {
  return makeTask({
    environment: { ...makeTask().environment, cacheKey: [...DEFAULT_CACHE_KEY] },
  });
}

/** A task in which every field that may be left out holds something else. */
function fullTask(): Task {
  const base = makeTask();
  const usage = { ...EMPTY_USAGE, inputTokens: 10, modelCalls: 1 };
  const error = {
    code: 'verify_failed' as const,
    message: 'tests failed',
    phase: 'verify' as const,
  };
  const result = {
    summary: 'done',
    files: [{ path: 'a.ts', status: 'modified' as const, additions: 1, deletions: 0 }],
    additions: 1,
    deletions: 0,
    patchBytes: 42,
    verify: null,
  };
  const timings = {
    queuedMs: 1,
    fetchMs: 2,
    provisionMs: 3,
    setupMs: null,
    setupCached: null,
    workspacePreloaded: false,
    agentMs: 4,
    verifyMs: null,
    readyAt: base.createdAt,
  };
  const turn = newTurn(
    { ...base, attempts: 2, models: ['m1', 'm2'] },
    1,
    'not the prompt',
    base.createdAt,
  );
  return {
    ...base,
    status: 'failed',
    phase: 'verify',
    startedAt: base.createdAt,
    finishedAt: base.createdAt,
    environment: {
      image: 'img',
      setup: 'npm ci',
      verify: 'npm test',
      env: { CI: '1' },
      secretNames: ['TOKEN'],
      network: 'allowlist',
      allowDomains: ['x.example.org'],
      cacheKey: [],
      setupAlways: true,
      maintenance: 'npm prune',
    },
    baseCommit: 'a'.repeat(40),
    result,
    usage,
    error,
    tries: 2,
    attempts: 2,
    models: ['m1', 'm2'],
    cancelRequested: true,
    turns: [
      {
        ...turn,
        status: 'failed',
        startedAt: base.createdAt,
        finishedAt: base.createdAt,
        warm: false,
        usage,
        error,
        result,
        chosen: 2,
        timings,
        attempts: turn.attempts.map((a) => ({
          ...a,
          status: 'failed' as const,
          startedAt: base.createdAt,
          finishedAt: base.createdAt,
          tries: 1,
          worker: 'w1',
          usage,
          error,
          result,
          changes: result,
          timings,
        })),
      },
    ],
    delivery: null,
    notify: { url: 'https://hooks.example.org/x' },
    timings,
  };
}

const stored = async (id: string): Promise<string> =>
  (await redis.get(`${prefix}:task:${id}`)) ?? '';

describe('stored task records', () => {
  it('leave out what a new task holds empty, and read back as the record', async () => {
    const task = newTask();
    await store.create(task);
    const json = await stored(task.id);
    expect(await store.get(task.id)).toEqual(task);
    // The default cache key, zero usages, nulls and turn 1's copy of the prompt are not stored.
    expect(json).not.toContain('"cacheKey"');
    expect(json).not.toContain('"usage"');
    expect(json).not.toContain('null,');
    expect(json.split(JSON.stringify(task.prompt))).toHaveLength(2);
    expect(json.length).toBeLessThan(JSON.stringify(task).length / 2);
  });

  it('keep every field that holds something else, empty-looking values included', async () => {
    const task = fullTask();
    await store.create(task);
    expect(await store.get(task.id)).toEqual(task);
    const json = await stored(task.id);
    expect(json).toContain('"cacheKey":[]');
    expect(json).toContain('"prompt":"not the prompt"');
  });

  it('stay exact through updates that fill fields and empty them again', async () => {
    const task = newTask();
    await store.create(task);
    const full = fullTask();
    const filled = await store.update(task.id, (t) => ({
      ...full,
      id: t.id,
      tenant: t.tenant,
      status: 'running',
      finishedAt: null,
    }));
    expect(await store.get(task.id)).toEqual(filled);
    const emptied = await store.update(task.id, (t) => ({
      ...newTask(),
      id: t.id,
      tenant: t.tenant,
      createdAt: t.createdAt,
    }));
    expect(await store.get(task.id)).toEqual(emptied);
    expect((await stored(task.id)).length).toBeLessThan(JSON.stringify(emptied).length / 2);
  });

  it('read a record stored whole, as before the form, as it was', async () => {
    const task = fullTask();
    const plain = newTask();
    await store.create(task);
    await store.create(plain);
    await redis.set(`${prefix}:task:${task.id}`, JSON.stringify(task));
    await redis.set(`${prefix}:task:${plain.id}`, JSON.stringify(plain));
    expect(await store.get(task.id)).toEqual(task);
    expect(await store.get(plain.id)).toEqual(plain);
  });

  it('refuse stored JSON that is no record, whatever its shape', async () => {
    for (const [id, raw] of [
      ['array', '[]'],
      ['string', '"task"'],
      ['partial', '{"id":"partial","turns":[{"n":1,"attempts":[7]}]}'],
      [
        'bad-environment',
        JSON.stringify({ ...newTask(), id: 'bad-environment', environment: 'x' }),
      ],
    ]) {
      await redis.set(`${prefix}:task:${id}`, raw as string);
      const err = await store.get(id as string).catch((e: unknown) => e);
      expect(isPatchbayError(err, 'internal_error'), `${id}: ${String(err)}`).toBe(true);
    }
  });
});
