import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isPatchbayError } from '@patchbay/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FsArtifactStore } from './fs-artifact-store.js';

let root: string;
let store: FsArtifactStore;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'patchbay-artifacts-'));
  store = new FsArtifactStore({ root: join(root, 'artifacts') });
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function text(stream: Readable | null): Promise<string | null> {
  if (stream === null) return null;
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('FsArtifactStore', () => {
  it('round-trips strings, buffers and streams and reports sizes', async () => {
    await store.put('task-1', 'patch.diff', 'diff --git a/x b/x\n');
    await store.put('task-1', 'blob.bin', Buffer.from([0, 1, 2, 255]));
    const big = 'x'.repeat(3 * 1024 * 1024);
    await store.put('task-1', 'events.jsonl', Readable.from([big.slice(0, 1000), big.slice(1000)]));

    expect(await text(await store.get('task-1', 'patch.diff'))).toBe('diff --git a/x b/x\n');
    expect(await store.size('task-1', 'blob.bin')).toBe(4);
    expect(await text(await store.get('task-1', 'events.jsonl'))).toBe(big);
    expect(await store.size('task-1', 'events.jsonl')).toBe(big.length);
    // No temporary files are left next to the artifacts.
    expect((await readdir(join(root, 'artifacts', 'task-1'))).sort()).toEqual([
      'blob.bin',
      'events.jsonl',
      'patch.diff',
    ]);
  });

  it('replaces an artifact whole', async () => {
    await store.put('t', 'patch.diff', 'old');
    await store.put('t', 'patch.diff', 'new');
    expect(await text(await store.get('t', 'patch.diff'))).toBe('new');
  });

  it('answers null for a missing artifact or task and removes a task', async () => {
    expect(await store.get('nope', 'patch.diff')).toBeNull();
    expect(await store.size('nope', 'patch.diff')).toBeNull();
    await store.put('t', 'patch.diff', 'x');
    expect(await store.get('t', 'other')).toBeNull();
    await store.remove('t');
    expect(await store.get('t', 'patch.diff')).toBeNull();
    await store.remove('t');
  });

  it('keeps the old artifact and no temporary file when a streamed write fails', async () => {
    await store.put('t', 'patch.diff', 'old');
    const failing = new Readable({
      read() {
        this.push('partial');
        this.destroy(new Error('source broke'));
      },
    });
    await expect(store.put('t', 'patch.diff', failing)).rejects.toThrow('source broke');
    expect(await text(await store.get('t', 'patch.diff'))).toBe('old');
    expect(await readdir(join(root, 'artifacts', 't'))).toEqual(['patch.diff']);
  });

  it('refuses task ids and names that could leave its directory', async () => {
    const bad = ['..', '.', '../x', 'a/b', 'a\\b', '.hidden', '', 'a\0b', 'é', 'x'.repeat(201)];
    for (const value of bad) {
      for (const call of [
        () => store.put(value, 'ok', 'x'),
        () => store.put('ok', value, 'x'),
        () => store.get(value, 'ok'),
        () => store.get('ok', value),
        () => store.size('ok', value),
        () => store.remove(value),
      ]) {
        const err: unknown = await call().then(
          () => null,
          (e: unknown) => e,
        );
        expect(isPatchbayError(err, 'validation_error'), JSON.stringify(value)).toBe(true);
      }
    }
    expect(await readdir(root)).toEqual([]);
  });
});
