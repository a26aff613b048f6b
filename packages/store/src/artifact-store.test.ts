import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isPatchbayError } from '@patchbay/core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from './fs-artifact-store.js';
import { S3ArtifactStore } from './s3-artifact-store.js';
import { connectS3 } from './s3.js';
import { type S3TestServer, startS3Server } from './testing.js';
import type { ArtifactStore } from './types.js';

async function text(found: { body: Readable; size: number } | null): Promise<string | null> {
  if (found === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of found.body) chunks.push(chunk as Buffer);
  const bytes = Buffer.concat(chunks);
  expect(found.size).toBe(bytes.length);
  return bytes.toString('utf8');
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => null,
    (err: unknown) => err,
  );
}

/** A stream that sends `bytes` in `chunk`-sized pieces. */
function streamOf(bytes: Buffer, chunk = 64 * 1024): Readable {
  let at = 0;
  return new Readable({
    read() {
      this.push(at < bytes.length ? bytes.subarray(at, (at += chunk)) : null);
    },
  });
}

let s3: S3TestServer;
let root: string;
beforeAll(async () => {
  s3 = await startS3Server({ buckets: ['artifacts'] });
});
afterAll(async () => {
  await s3.close();
});
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'patchbay-artifacts-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const stores: [string, () => ArtifactStore][] = [
  ['FsArtifactStore', () => new FsArtifactStore({ root: join(root, 'artifacts') })],
  [
    'S3ArtifactStore',
    () =>
      new S3ArtifactStore(s3.location('artifacts', `test/${Math.random().toString(36).slice(2)}`)),
  ],
];

describe.each(stores)('%s', (_name, make) => {
  let store: ArtifactStore;
  beforeEach(() => {
    store = make();
  });

  it('round-trips strings, buffers and streams with their sizes', async () => {
    await store.put('task-1', 'patch.diff', 'diff --git a/x b/x\n');
    await store.put('task-1', 'blob.bin', Buffer.from([0, 1, 2, 255]));
    // Larger than S3's multipart part size, so a stream goes up in several parts.
    const big = Buffer.alloc(12 * 1024 * 1024 + 17, 'x');
    await store.put('task-1', 'events.jsonl', streamOf(big));

    expect(await text(await store.get('task-1', 'patch.diff'))).toBe('diff --git a/x b/x\n');
    const blob = await store.get('task-1', 'blob.bin');
    expect(blob?.size).toBe(4);
    blob?.body.destroy();
    expect(await text(await store.get('task-1', 'events.jsonl'))).toBe(big.toString());
    expect(await text(await store.get('task-1', 'empty'))).toBeNull();
    await store.put('task-1', 'empty', '');
    expect(await text(await store.get('task-1', 'empty'))).toBe('');
  });

  it('replaces an artifact whole', async () => {
    await store.put('t', 'patch.diff', 'old');
    await store.put('t', 'patch.diff', 'new');
    expect(await text(await store.get('t', 'patch.diff'))).toBe('new');
  });

  it('answers null for a missing artifact or task and removes one task only', async () => {
    expect(await store.get('nope', 'patch.diff')).toBeNull();
    await store.put('t', 'patch.diff', 'x');
    await store.put('t', 'events.jsonl', 'y');
    await store.put('t2', 'patch.diff', 'other task');
    expect(await store.get('t', 'other')).toBeNull();
    await store.remove('t');
    expect(await store.get('t', 'patch.diff')).toBeNull();
    expect(await store.get('t', 'events.jsonl')).toBeNull();
    expect(await text(await store.get('t2', 'patch.diff'))).toBe('other task');
    await store.remove('t');
  });

  it('keeps the old artifact when a streamed write fails, whatever was sent', async () => {
    await store.put('t', 'patch.diff', 'old');
    for (const sent of [Buffer.from('partial'), Buffer.alloc(6 * 1024 * 1024, 'p')]) {
      let pushed = false;
      const failing = new Readable({
        read() {
          if (pushed) this.destroy(new Error('source broke'));
          else this.push(sent);
          pushed = true;
        },
      });
      await expect(store.put('t', 'patch.diff', failing)).rejects.toThrow('source broke');
      expect(await text(await store.get('t', 'patch.diff'))).toBe('old');
    }
  });

  it('refuses task ids and names that could leave its directory or prefix', async () => {
    const bad = ['..', '.', '../x', 'a/b', 'a\\b', '.hidden', '', 'a\0b', 'é', 'x'.repeat(201)];
    for (const value of bad) {
      for (const call of [
        () => store.put(value, 'ok', 'x'),
        () => store.put('ok', value, 'x'),
        () => store.get(value, 'ok'),
        () => store.get('ok', value),
        () => store.remove(value),
      ]) {
        const err = await rejection(call());
        expect(isPatchbayError(err, 'validation_error'), JSON.stringify(value)).toBe(true);
      }
    }
    expect(await store.get('ok', 'ok')).toBeNull();
  });
});

describe('FsArtifactStore on disk', () => {
  it('leaves no temporary file, after a write or a failed one', async () => {
    const store = new FsArtifactStore({ root: join(root, 'artifacts') });
    await store.put('t', 'patch.diff', 'old');
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('source broke'));
      },
    });
    await expect(store.put('t', 'patch.diff', failing)).rejects.toThrow('source broke');
    expect(await readdir(join(root, 'artifacts', 't'))).toEqual(['patch.diff']);
  });
});

describe('S3ArtifactStore', () => {
  it('lays objects out as <prefix>/<task>/<name> and leaves no upload behind a failed one', async () => {
    const location = s3.location('artifacts', 'layout/run');
    const store = new S3ArtifactStore(location);
    await store.put('task-9', 'patch.diff', 'x');
    const failing = new Readable({
      read() {
        this.push(Buffer.alloc(6 * 1024 * 1024, 'p'));
        this.destroy(new Error('source broke'));
      },
    });
    await expect(store.put('task-9', 'events.jsonl', failing)).rejects.toThrow('source broke');
    const { s3: client, sdk } = await connectS3(location)();
    const listed = await client.send(
      new sdk.ListObjectsV2Command({ Bucket: 'artifacts', Prefix: 'layout/' }),
    );
    expect(listed.Contents?.map((o) => o.Key)).toEqual(['layout/run/task-9/patch.diff']);
    client.destroy();
  });

  it('streams a 64 MiB artifact without holding it: the first bytes come while the rest waits', async () => {
    const store = new S3ArtifactStore(s3.location('artifacts', 'streaming'));
    const size = 64 * 1024 * 1024;
    await store.put('big', 'patch.diff', streamOf(Buffer.alloc(size, 'd'), 1024 * 1024));
    const before = process.memoryUsage().arrayBuffers;
    const found = await store.get('big', 'patch.diff');
    expect(found?.size).toBe(size);
    const body = found!.body;
    const first = (await body[Symbol.asyncIterator]().next()).value as Buffer;
    expect(first.length).toBeGreaterThan(0);
    // Paused after one chunk, what has arrived is a socket's worth, not the object.
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);
    body.destroy();
  });

  it('turns an outage into storage_unavailable (retryable), naming the store', async () => {
    const down = await startS3Server({ buckets: ['artifacts'] });
    const store = new S3ArtifactStore(down.location('artifacts', 'outage'));
    await store.put('t', 'patch.diff', 'kept');
    await down.close();
    for (const call of [
      () => store.put('t', 'patch.diff', 'lost?'),
      () => store.put('t', 'events.jsonl', streamOf(Buffer.alloc(1024, 'e'))),
      () => store.get('t', 'patch.diff'),
      () => store.remove('t'),
    ]) {
      const err = await rejection(call());
      expect(isPatchbayError(err, 'storage_unavailable'), String(err)).toBe(true);
      expect((err as { retryable: boolean }).retryable).toBe(true);
      expect((err as Error).message).toContain(`s3://artifacts/outage at ${down.endpoint}`);
    }
  });
});
