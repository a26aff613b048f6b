import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_CACHE_KEY,
  EMPTY_USAGE,
  isPatchbayError,
  newTurn,
  type Task,
} from '@patchbay/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from './fs-artifact-store.js';
import { StoreKeys } from './keys.js';
import { RedisEventLog } from './redis-event-log.js';
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
  prefix = uniquePrefix('tasks');
  store = new RedisTaskStore({ redis, prefix });
});
afterEach(async () => {
  await deletePrefix(redis, prefix);
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('RedisTaskStore', () => {
  it('stores a task and reads it back, scoped by tenant', async () => {
    const task = makeTask({ tenant: 'acme' });
    await store.create(task);
    expect(await store.get(task.id)).toEqual(task);
    expect(await store.getForTenant('acme', task.id)).toEqual(task);
    expect(await store.getForTenant('other', task.id)).toBeNull();
    expect(await store.get('missing')).toBeNull();
    expect((await store.list('other')).tasks).toEqual([]);
  });

  it('keeps every key under its prefix and escapes ids so they cannot reach other keys', async () => {
    const task = makeTask({ id: 'x:secrets' });
    await store.create(task, { secrets: { TOKEN: 't' } });
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.every((k) => k.startsWith(`${prefix}:`))).toBe(true);
    expect(await store.get('x')).toBeNull();
    expect(await store.secrets('x')).toEqual({});
  });

  it('refuses a second task with the same id', async () => {
    const task = makeTask();
    await store.create(task);
    const err = await rejection(store.create({ ...task, prompt: 'other' }));
    expect(isPatchbayError(err, 'conflict')).toBe(true);
    expect((await store.get(task.id))?.prompt).toBe(task.prompt);
  });

  it('lists newest first across pages, with equal timestamps, and filters by status', async () => {
    const base = Date.parse('2030-01-01T00:00:00.000Z');
    const created: Task[] = [];
    for (let i = 0; i < 57; i++) {
      // Groups of five share a millisecond, so ties must be broken by id across page edges.
      const task = makeTask({
        createdAt: new Date(base + Math.floor(i / 5)).toISOString(),
        status: i % 3 === 0 ? 'running' : 'queued',
      });
      created.push(task);
    }
    await Promise.all(created.map((t) => store.create(t)));
    await store.create(makeTask({ tenant: 'other' }));

    const walk = async (query: { status?: Task['status'] }, limit: number) => {
      const seen: Task[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 100; pages++) {
        const page = await store.list('acme', {
          ...query,
          limit,
          ...(cursor === undefined ? {} : { cursor }),
        });
        expect(page.tasks.length).toBeLessThanOrEqual(limit);
        seen.push(...page.tasks);
        if (page.nextCursor === null) return seen;
        cursor = page.nextCursor;
      }
      throw new Error('pagination did not end');
    };
    const newestFirst = (a: Task, b: Task) =>
      Date.parse(b.createdAt) - Date.parse(a.createdAt) ||
      Buffer.compare(Buffer.from(b.id), Buffer.from(a.id));

    for (const limit of [1, 4, 5, 7, 20, 200]) {
      const all = await walk({}, limit);
      expect(all.map((t) => t.id)).toEqual([...created].sort(newestFirst).map((t) => t.id));
    }
    const running = await walk({ status: 'running' }, 3);
    expect(running.map((t) => t.id)).toEqual(
      created
        .filter((t) => t.status === 'running')
        .sort(newestFirst)
        .map((t) => t.id),
    );
    expect(await walk({ status: 'succeeded' }, 3)).toEqual([]);
  });

  it('refuses a cursor it did not make and an out-of-range limit', async () => {
    for (const cursor of ['nope!', 'bm9wZQ', Buffer.from('[1,2]').toString('base64url'), '']) {
      const err = await rejection(store.list('acme', { cursor }));
      expect(isPatchbayError(err, 'validation_error')).toBe(true);
    }
    for (const limit of [0, -1, 1.5, 10_000]) {
      const err = await rejection(store.list('acme', { limit }));
      expect(isPatchbayError(err, 'validation_error')).toBe(true);
    }
  });

  it('enforces the per-tenant cap atomically under concurrent creates', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => store.create(makeTask(), { maxActive: 5 })),
    );
    const ok = results.filter((r) => r.status === 'fulfilled');
    const limited = results.filter(
      (r) => r.status === 'rejected' && isPatchbayError(r.reason, 'rate_limited'),
    );
    expect(ok).toHaveLength(5);
    expect(limited).toHaveLength(15);
    expect(await store.countActive('acme')).toBe(5);
    expect((await store.list('acme', { limit: 100 })).tasks).toHaveLength(5);
    // Another tenant has its own cap.
    await store.create(makeTask({ tenant: 'other' }), { maxActive: 5 });
  });

  it('sends concurrent creates as one call, in which a create that fails fails alone', async () => {
    // A key of the wrong type makes the broken tenant's create fail inside Redis.
    await redis.set(new StoreKeys(prefix).tenantTasks('broken'), 'not a sorted set');
    const broken = makeTask({ tenant: 'broken' });
    const fine = Array.from({ length: 4 }, () => makeTask());
    const results = await Promise.allSettled(
      [fine[0]!, fine[1]!, broken, fine[2]!, fine[3]!].map((t) => store.create(t)),
    );
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'fulfilled',
      'fulfilled',
    ]);
    const failure = (results[2] as PromiseRejectedResult).reason as Error;
    expect(isPatchbayError(failure, 'internal_error')).toBe(true);
    expect(failure.message).toContain('WRONGTYPE');
    for (const t of fine) expect((await store.get(t.id))?.id).toBe(t.id);
  });

  it('writes a first event with the record, as seq 1 of the log, and neither when refused', async () => {
    const events = new RedisEventLog({
      redis,
      prefix,
      artifacts: new FsArtifactStore({ root: join(tmpdir(), 'patchbay-unused') }),
      createBlockingConnection: testRedis,
    });
    const queued = { type: 'status', status: 'queued', phase: null } as const;
    const task = makeTask();
    await store.create(task, { maxActive: 1, firstEvent: queued });
    expect(await events.read(task.id)).toEqual([{ seq: 1, time: expect.any(String), ...queued }]);
    expect(await events.append(task.id, { type: 'status', status: 'running', phase: null })).toBe(
      2,
    );

    const refused = makeTask();
    const err = await rejection(store.create(refused, { maxActive: 1, firstEvent: queued }));
    expect(isPatchbayError(err, 'rate_limited')).toBe(true);
    expect(await store.get(refused.id)).toBeNull();
    expect(await redis.keys(`${prefix}:events:${refused.id}*`)).toEqual([]);
    // An event that does not parse stops the create before anything is written.
    const bad = makeTask();
    const invalid = { type: 'nope' } as unknown as typeof queued;
    expect(
      isPatchbayError(
        await rejection(store.create(bad, { firstEvent: invalid })),
        'internal_error',
      ),
    ).toBe(true);
    expect(await store.get(bad.id)).toBeNull();
  });

  it('frees cap room when a task ends', async () => {
    const first = makeTask();
    await store.create(first, { maxActive: 1 });
    const err = await rejection(store.create(makeTask(), { maxActive: 1 }));
    expect(isPatchbayError(err, 'rate_limited')).toBe(true);
    await store.update(first.id, (t) => ({ ...t, status: 'running' }));
    expect(await store.countActive('acme')).toBe(1);
    await store.update(first.id, (t) => ({ ...t, status: 'succeeded' }));
    expect(await store.countActive('acme')).toBe(0);
    await store.create(makeTask(), { maxActive: 1 });
  });

  it('counts tasks by status across tenants as they move', async () => {
    const [a, b, c] = [makeTask({ tenant: 'acme' }), makeTask({ tenant: 'other' }), makeTask()];
    for (const task of [a, b, c]) await store.create(task);
    await store.update(a.id, (t) => ({ ...t, status: 'running' }));
    await store.update(a.id, (t) => ({ ...t, status: 'running', phase: 'agent' }));
    await store.update(b.id, (t) => ({ ...t, status: 'cancelled' }));
    // A terminal record is final: this update writes nothing and counts nothing.
    await store.update(b.id, (t) => ({ ...t, status: 'running' }));
    expect(await store.countByStatus()).toEqual({
      queued: 1,
      running: 1,
      succeeded: 0,
      failed: 0,
      cancelled: 1,
    });
  });

  it('applies concurrent updates without losing any', async () => {
    const task = makeTask();
    await store.create(task);
    await Promise.all(
      Array.from({ length: 30 }, () =>
        store.update(task.id, (t) => ({
          ...t,
          usage: { ...t.usage, toolCalls: t.usage.toolCalls + 1 },
        })),
      ),
    );
    expect((await store.get(task.id))?.usage.toolCalls).toBe(30);
  });

  it('moves a task between status indexes and never changes a terminal record', async () => {
    const task = makeTask();
    await store.create(task);
    const running = await store.update(task.id, (t) => ({
      ...t,
      status: 'running',
      phase: 'agent',
    }));
    expect(running?.status).toBe('running');
    expect((await store.list('acme', { status: 'queued' })).tasks).toEqual([]);
    expect((await store.list('acme', { status: 'running' })).tasks.map((t) => t.id)).toEqual([
      task.id,
    ]);

    const cancelled = await store.update(task.id, (t) => ({ ...t, status: 'cancelled' }));
    expect(cancelled?.status).toBe('cancelled');
    let called = false;
    const after = await store.update(task.id, (t) => {
      called = true;
      return { ...t, status: 'succeeded' };
    });
    expect(after).toBeNull();
    expect(called).toBe(false);
    expect((await store.get(task.id))?.status).toBe('cancelled');
    expect((await store.list('acme', { status: 'running' })).tasks).toEqual([]);
    expect((await store.list('acme', { status: 'cancelled' })).tasks.map((t) => t.id)).toEqual([
      task.id,
    ]);

    expect(await store.update('missing', (t) => t)).toBeNull();
    const unchanged = makeTask();
    await store.create(unchanged);
    expect(await store.update(unchanged.id, () => null)).toBeNull();
    expect(await store.get(unchanged.id)).toEqual(unchanged);
  });

  it('lets exactly one of two racing terminal transitions win', async () => {
    const task = makeTask({ status: 'running' });
    await store.create(task);
    const [a, b] = await Promise.all([
      store.update(task.id, (t) => ({ ...t, status: 'cancelled' })),
      store.update(task.id, (t) => ({ ...t, status: 'succeeded' })),
    ]);
    expect([a, b].filter((r) => r !== null)).toHaveLength(1);
    const final = await store.get(task.id);
    expect(final?.status).toBe((a ?? b)?.status);
  });

  it('refuses an update that changes the id or tenant', async () => {
    const task = makeTask();
    await store.create(task);
    const err = await rejection(store.update(task.id, (t) => ({ ...t, tenant: 'other' })));
    expect(isPatchbayError(err, 'internal_error')).toBe(true);
  });

  it('keeps secrets apart from the record and deletes them', async () => {
    const task = makeTask({
      environment: { ...makeTask().environment, secretNames: ['NPM_TOKEN'] },
    });
    await store.create(task, { secrets: { NPM_TOKEN: 's3cr3t-value' } });
    const raw = await redis.get(`${prefix}:task:${task.id}`);
    expect(raw).not.toContain('s3cr3t-value');
    expect(await store.secrets(task.id)).toEqual({ NPM_TOKEN: 's3cr3t-value' });
    await store.deleteSecrets(task.id);
    expect(await store.secrets(task.id)).toEqual({});
    await store.deleteSecrets(task.id);
  });

  it('reports a corrupt record as an internal error rather than serving it', async () => {
    await redis.set(`${prefix}:task:bad`, '{"id":"bad"}');
    const err = await rejection(store.get('bad'));
    expect(isPatchbayError(err, 'internal_error')).toBe(true);
  });
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
