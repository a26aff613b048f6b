import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { makeTask } from '@patchbay/core/testing';
import { silentLogger } from '@patchbay/core';
import type { ExecResult, Sandbox } from '@patchbay/sandbox';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EnvironmentCache, type EnvironmentEntry, type EnvironmentIndex } from './environments.js';
import { type S3TestServer, startS3Server } from '@patchbay/store/testing';
import { S3Snapshots } from './shared-snapshots.js';

/**
 * The cache's bookkeeping, with a sandbox that hands out a given snapshot and records what is
 * laid down: eviction, half-written and damaged entries, the index as the authority, secrets.
 */
/** A one-file tar, as `getArchive` of a file gives it. */
function tarOf(name: string, content: Buffer): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, 'latin1');
  header.write('0000644\0', 100, 'latin1');
  header.write('0001750\0', 108, 'latin1');
  header.write('0001750\0', 116, 'latin1');
  header.write(`${content.length.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  header.write('14712345670\0', 136, 'latin1');
  header.write('        ', 148, 'latin1');
  header.write('0', 156, 'latin1');
  header.write('ustar\0' + '00', 257, 'latin1');
  const sum = header.reduce((a, b) => a + b, 0);
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  const pad = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, pad, Buffer.alloc(1024)]);
}

function fakeSandbox(snapshot: Buffer, chunk = 7): Sandbox & { laid: Buffer[] } {
  const archive = tarOf('.patchbay-env.tar', snapshot);
  const ok: ExecResult = {
    exitCode: 0,
    signal: null,
    output: Buffer.from('hash  package-lock.json\n'),
    droppedBytes: 0,
    durationMs: 1,
    timedOut: false,
    aborted: false,
    oomKilled: false,
  };
  const laid: Buffer[] = [];
  return {
    laid,
    exec: async () => ok,
    getArchive: async () =>
      Readable.from(
        Array.from({ length: Math.ceil(archive.length / chunk) }, (_, i) =>
          archive.subarray(i * chunk, (i + 1) * chunk),
        ),
      ),
    putArchive: async (tar: Readable, options: { gzip?: boolean }) => {
      const parts: Buffer[] = [];
      for await (const c of tar) parts.push(c as Buffer);
      laid.push(options.gzip ? gunzipSync(Buffer.concat(parts)) : Buffer.concat(parts));
    },
  } as unknown as Sandbox & { laid: Buffer[] };
}

class MemoryIndex implements EnvironmentIndex {
  readonly entries = new Map<string, EnvironmentEntry>();
  async get(tenant: string, key: string) {
    return this.entries.get(`${tenant} ${key}`) ?? null;
  }
  async put(entry: EnvironmentEntry) {
    this.entries.set(`${entry.tenant} ${entry.key}`, entry);
  }
  async remove(tenant: string, key: string) {
    this.entries.delete(`${tenant} ${key}`);
  }
}

let dir: string;
let index: MemoryIndex;
const signal = new AbortController().signal;
const task = makeTask({ tenant: 'acme', baseCommit: 'a'.repeat(40) });
const cache = (maxBytes = 1 << 30) =>
  new EnvironmentCache({
    dir,
    index,
    maxBytes,
    ttlMs: 3_600_000,
    workerId: 'w',
    log: silentLogger,
  });
const snapshot = (n: number, fill = 'x') => Buffer.from(`tar:${fill.repeat(n)}`);

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchbay-envcache-'));
  index = new MemoryIndex();
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('EnvironmentCache', () => {
  it('keeps a snapshot and lays the very bytes down again', async () => {
    const c = cache();
    const bytes = snapshot(5000);
    expect(await c.save(task, 'k1', 'img', fakeSandbox(bytes), [], signal)).toBe(true);
    const target = fakeSandbox(Buffer.alloc(0));
    expect(await c.restore('acme', 'k1', target, signal)).toBe(true);
    expect(target.laid).toEqual([bytes]);
    // Never for another tenant, nor for a key it does not have.
    expect(await c.restore('umbrella', 'k1', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    expect(await c.restore('acme', 'k2', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
  });

  it('evicts the least recently used entries past its size', async () => {
    // Random bytes do not compress: each entry is about 4 KiB on disk.
    const { randomBytes } = await import('node:crypto');
    const c = cache(10_000);
    await c.save(task, 'old', 'img', fakeSandbox(randomBytes(4000)), [], signal);
    await c.save(task, 'used', 'img', fakeSandbox(randomBytes(4000)), [], signal);
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await c.restore('acme', 'old', fakeSandbox(Buffer.alloc(0)), signal)).toBe(true);
    await c.save(task, 'new', 'img', fakeSandbox(randomBytes(4000)), [], signal);
    expect([...index.entries.keys()].sort()).toEqual(['acme new', 'acme old']);
    expect(await c.restore('acme', 'used', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    expect((await readdir(dir)).filter((n) => n.startsWith('used'))).toEqual([]);
  });

  it('never uses a half-written entry, and clears what a killed worker left', async () => {
    const c = cache();
    await c.save(task, 'k', 'img', fakeSandbox(snapshot(100)), [], signal);
    // A worker killed mid-write leaves a temporary file, or data without its metadata.
    await writeFile(join(dir, 'half.tmp-123456'), 'partial');
    await writeFile(join(dir, `half.${'0'.repeat(64)}.tar.gz`), 'partial');
    await index.put({ ...(await index.get('acme', 'k'))!, key: 'half' });
    const fresh = cache();
    expect(await fresh.restore('acme', 'half', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    expect((await readdir(dir)).some((n) => n.includes('.tmp-'))).toBe(false);
    expect(await fresh.restore('acme', 'k', fakeSandbox(Buffer.alloc(0)), signal)).toBe(true);
  });

  it('drops a damaged entry, and one the index no longer lists', async () => {
    const c = cache();
    await c.save(task, 'k', 'img', fakeSandbox(snapshot(1000)), [], signal);
    const data = (await readdir(dir)).find((n) => n.endsWith('.tar.gz'))!;
    await writeFile(join(dir, data), 'not what was written');
    expect(await c.restore('acme', 'k', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    expect(await index.get('acme', 'k')).toBeNull();
    await c.save(task, 'k2', 'img', fakeSandbox(snapshot(10)), [], signal);
    await index.remove('acme', 'k2');
    expect(await c.restore('acme', 'k2', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    expect(await readdir(dir)).toEqual([]);
  });

  it('takes no snapshot holding a secret value, even split across chunks', async () => {
    const c = cache();
    const leaked = Buffer.from(`tar:${'x'.repeat(50)}sekrit-value-123${'y'.repeat(50)}`);
    expect(
      await c.save(task, 'k', 'img', fakeSandbox(leaked, 5), ['sekrit-value-123'], signal),
    ).toBe(false);
    expect(await readdir(dir)).toEqual([]);
    expect(index.entries.size).toBe(0);
  });

  describe('shared through an S3-compatible store', () => {
    let server: S3TestServer;
    let store: S3Snapshots;

    beforeEach(async () => {
      server = await startS3Server({ buckets: ['snapshots'] });
      store = new S3Snapshots(server.location('snapshots', 'patchbay/environments'));
    });
    afterEach(async () => {
      await server.close();
    });

    const onHost = async (shared: S3Snapshots) =>
      new EnvironmentCache({
        dir: await mkdtemp(join(tmpdir(), 'patchbay-envcache-host-')),
        index,
        maxBytes: 1 << 30,
        ttlMs: 3_600_000,
        workerId: 'w',
        log: silentLogger,
        shared,
      });

    it("lets a worker on another host start from one worker's snapshot", async () => {
      const a = await onHost(store);
      const b = await onHost(store);
      const bytes = snapshot(20_000, 'z');
      expect(await a.save(task, 'k', 'img', fakeSandbox(bytes), [], signal)).toBe(true);
      const target = fakeSandbox(Buffer.alloc(0));
      expect(await b.restore('acme', 'k', target, signal)).toBe(true);
      expect(target.laid).toEqual([bytes]);
      // Another tenant's index never names it, so it is never fetched for them.
      expect(await b.restore('umbrella', 'k', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    });

    it('does not use a shared object that does not match the index', async () => {
      const a = await onHost(store);
      await a.save(task, 'k', 'img', fakeSandbox(snapshot(100)), [], signal);
      const listed = (await index.get('acme', 'k'))!;
      // The index names content the store does not hold.
      await index.put({ ...listed, sha256: 'f'.repeat(64) });
      const b = await onHost(store);
      expect(await b.restore('acme', 'k', fakeSandbox(Buffer.alloc(0)), signal)).toBe(false);
    });
  });
});
