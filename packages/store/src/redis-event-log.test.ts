import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskEvent, TaskEventBody } from '@patchbay/core';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from './fs-artifact-store.js';
import { EVENTS_ARTIFACT, RedisEventLog } from './redis-event-log.js';
import { readArtifact } from './read-artifact.js';
import { deletePrefix, testRedis, uniquePrefix } from './test-support.js';

let redis: Redis;
let prefix: string;
let root: string;
let artifacts: FsArtifactStore;
let log: RedisEventLog;
/** Every blocking connection a follow opened, to check none is left open. */
let blockingConnections: Redis[];

beforeAll(() => {
  redis = testRedis();
});
afterAll(async () => {
  await redis.quit();
});
beforeEach(async () => {
  prefix = uniquePrefix('events');
  root = await mkdtemp(join(tmpdir(), 'patchbay-events-'));
  artifacts = new FsArtifactStore({ root });
  blockingConnections = [];
  log = new RedisEventLog({
    redis,
    prefix,
    artifacts,
    blockMs: 200,
    createBlockingConnection: () => {
      const connection = testRedis();
      blockingConnections.push(connection);
      return connection;
    },
  });
});
afterEach(async () => {
  try {
    // A follow disconnects its blocking connection however it ends; the socket closes soon after.
    for (let i = 0; i < 50 && blockingConnections.some((c) => c.status !== 'end'); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(blockingConnections.map((c) => c.status).filter((s) => s !== 'end')).toEqual([]);
  } finally {
    for (const c of blockingConnections) c.disconnect();
    await deletePrefix(redis, prefix);
    await rm(root, { recursive: true, force: true });
  }
});

const output = (text: string): TaskEventBody => ({ type: 'output', phase: 'setup', text });
const done: TaskEventBody = { type: 'status', status: 'succeeded' };

async function collect(iterable: AsyncIterable<TaskEvent>, max = 10_000): Promise<TaskEvent[]> {
  const events: TaskEvent[] = [];
  for await (const event of iterable) {
    events.push(event);
    if (events.length >= max) break;
  }
  return events;
}

const seqs = (events: TaskEvent[]) => events.map((e) => e.seq);
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('RedisEventLog', () => {
  it('appends events with seq from 1 and reads them back with time, in order', async () => {
    const id = randomUUID();
    expect(await log.append(id, { type: 'status', status: 'running' })).toBe(1);
    expect(
      await log.append(id, [
        output('a'),
        { type: 'plan', steps: [] },
        { type: 'command', phase: 'setup', command: 'npm ci', exitCode: 0, durationMs: 12.5 },
      ]),
    ).toBe(4);
    expect(await log.append(id, [])).toBe(4);
    const events = await log.read(id);
    expect(seqs(events)).toEqual([1, 2, 3, 4]);
    expect(events[2]).toMatchObject({ type: 'plan', steps: [], seq: 3 });
    expect(events[3]).toMatchObject({ durationMs: 12.5, exitCode: 0 });
    expect(Number.isNaN(Date.parse(events[0]!.time))).toBe(false);
    expect(seqs(await log.read(id, { after: 2 }))).toEqual([3, 4]);
    expect(seqs(await log.read(id, { after: 1, limit: 2 }))).toEqual([2, 3]);
    expect(await log.read(id, { after: 4 })).toEqual([]);
    expect(await log.read(randomUUID())).toEqual([]);
  });

  it('drops stray fields of a body so they cannot shadow seq and time', async () => {
    const id = randomUUID();
    await log.append(id, { ...output('x'), seq: 99, time: 'never' } as unknown as TaskEventBody);
    const [event] = await log.read(id);
    expect(event).toMatchObject({ seq: 1, text: 'x' });
    expect(event?.time).not.toBe('never');
  });

  it('gives strictly increasing seqs to concurrent appenders, batches kept together', async () => {
    const id = randomUUID();
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        log.append(id, [output(`${i}-a`), output(`${i}-b`), output(`${i}-c`)]),
      ),
    );
    expect(new Set(results).size).toBe(40);
    const events = await log.read(id);
    expect(seqs(events)).toEqual(range(1, 120));
    for (let i = 0; i < events.length; i += 3) {
      const texts = events.slice(i, i + 3).map((e) => (e.type === 'output' ? e.text : ''));
      const batch = texts[0]!.split('-')[0];
      expect(texts).toEqual([`${batch}-a`, `${batch}-b`, `${batch}-c`]);
      expect(results).toContain(events[i + 2]!.seq);
    }
  });

  it('follows from the start and from mid-way, every event once, ending after the terminal status', async () => {
    const id = randomUUID();
    await log.append(id, [output('before-1'), output('before-2')]);
    const fromStart = collect(log.follow(id));
    const fromMid = collect(log.follow(id, { after: 1 }));
    const writer = (async () => {
      for (let i = 0; i < 30; i++) {
        await log.append(id, output(`live-${i}`));
        if (i % 10 === 0) await new Promise((r) => setTimeout(r, 20));
      }
      // A non-terminal status does not end a follow.
      await log.append(id, [{ type: 'status', status: 'running' }, done]);
      await log.append(id, output('after the end'));
    })();
    const [a, b] = await Promise.all([fromStart, fromMid, writer]);
    expect(seqs(a)).toEqual(range(1, 34));
    expect(seqs(b)).toEqual(range(2, 34));
    expect(a.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('follows a task that has not written anything yet', async () => {
    const id = randomUUID();
    const following = collect(log.follow(id));
    await new Promise((r) => setTimeout(r, 300));
    await log.append(id, [output('x'), { type: 'status', status: 'failed' }]);
    expect(seqs(await following)).toEqual([1, 2]);
  });

  it('follows a task that already ended, from the stream and after it expired into the archive', async () => {
    const id = randomUUID();
    await log.append(id, [output('a'), output('b'), { type: 'status', status: 'cancelled' }]);
    expect(seqs(await collect(log.follow(id)))).toEqual([1, 2, 3]);
    await log.archive(id);
    expect(await redis.ttl(`${prefix}:events:${id}`)).toBeGreaterThan(0);
    expect(seqs(await collect(log.follow(id, { after: 1 })))).toEqual([2, 3]);

    // The stream expires; the archive serves reads and follows alike.
    await redis.del(`${prefix}:events:${id}`, `${prefix}:events:${id}:seq`);
    expect((await readArtifact(artifacts, id, EVENTS_ARTIFACT))?.length).toBeGreaterThan(0);
    expect(seqs(await log.read(id))).toEqual([1, 2, 3]);
    expect(seqs(await log.read(id, { after: 1, limit: 1 }))).toEqual([2]);
    expect(seqs(await collect(log.follow(id)))).toEqual([1, 2, 3]);
    expect(seqs(await collect(log.follow(id, { after: 3 })))).toEqual([]);
    // Nothing there needed to block: everything was in the stream or the archive.
    expect(blockingConnections).toHaveLength(0);
    // Archiving again once the stream is gone keeps the archive rather than emptying it.
    await log.archive(id);
    expect(seqs(await log.read(id))).toEqual([1, 2, 3]);
  });

  it('finishes a follow whose stream expires into the archive while it waits', async () => {
    const id = randomUUID();
    // A log without a terminal status (say, a task whose worker gave up on it).
    await log.append(id, [output('a'), output('b')]);
    const following = collect(log.follow(id));
    await new Promise((r) => setTimeout(r, 50));
    await log.archive(id);
    await redis.del(`${prefix}:events:${id}`);
    expect(seqs(await following)).toEqual([1, 2]);
  });

  it('stops a follow promptly when its signal aborts, and closes its connection', async () => {
    const id = randomUUID();
    await log.append(id, output('a'));
    const controller = new AbortController();
    const slowLog = new RedisEventLog({
      redis,
      prefix,
      artifacts,
      blockMs: 30_000,
      createBlockingConnection: () => {
        const connection = testRedis();
        blockingConnections.push(connection);
        return connection;
      },
    });
    const started = Date.now();
    const received: TaskEvent[] = [];
    const following = (async () => {
      for await (const event of slowLog.follow(id, { signal: controller.signal })) {
        received.push(event);
        if (received.length === 1) setTimeout(() => controller.abort(), 100);
      }
    })();
    await following;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(seqs(received)).toEqual([1]);
    // Already aborted: ends at once without opening a connection.
    expect(await collect(slowLog.follow(id, { signal: controller.signal }))).toEqual([]);
    expect(blockingConnections).toHaveLength(1);
  });

  it('closes its connection when the consumer stops early', async () => {
    const id = randomUUID();
    await log.append(id, [output('a'), output('b'), output('c')]);
    expect(seqs(await collect(log.follow(id), 2))).toEqual([1, 2]);
  });

  it('serves 50 concurrent followers every event exactly once', async () => {
    const id = randomUUID();
    const followers = Array.from({ length: 50 }, (_, i) =>
      collect(log.follow(id, { after: i % 5 })),
    );
    await log.append(
      id,
      range(1, 5).map((i) => output(`early-${i}`)),
    );
    for (let i = 0; i < 20; i++) await log.append(id, output(`live-${i}`));
    await log.append(id, done);
    const results = await Promise.all(followers);
    results.forEach((events, i) => expect(seqs(events)).toEqual(range((i % 5) + 1, 26)));
  });

  it('refuses a negative or fractional after', async () => {
    await expect(log.read('t', { after: -1 })).rejects.toMatchObject({ code: 'validation_error' });
    await expect(log.read('t', { after: 1.5 })).rejects.toMatchObject({ code: 'validation_error' });
  });
});
