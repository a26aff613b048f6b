import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireFileLock } from './file-lock.js';

let dir: string;
let lockPath: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchbay-lock-'));
  lockPath = join(dir, 'repo.lock');
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The pid of a process that has exited: a worker that was SIGKILLed. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ['-e', '0']);
  await once(child, 'exit');
  return child.pid!;
}

describe('acquireFileLock', () => {
  it('lets one holder in at a time', async () => {
    let inside = 0;
    let most = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const lock = await acquireFileLock(lockPath, { staleMs: 5000 });
        inside += 1;
        most = Math.max(most, inside);
        await sleep(10);
        inside -= 1;
        await lock.release();
      }),
    );
    expect(most).toBe(1);
  });

  it('waits for the holder to release', async () => {
    const first = await acquireFileLock(lockPath);
    const started = Date.now();
    setTimeout(() => void first.release(), 300);
    const second = await acquireFileLock(lockPath);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(second.tookOverStale).toBe(false);
    await second.release();
  });

  it('takes over at once from a holder on this host that no longer exists', async () => {
    const pid = await deadPid();
    await writeFile(lockPath, JSON.stringify({ pid, host: hostname(), token: 't', since: '' }));
    const holders: unknown[] = [];
    const started = Date.now();
    const lock = await acquireFileLock(lockPath, { onStale: (h) => holders.push(h) });
    expect(Date.now() - started).toBeLessThan(1000);
    expect(lock.tookOverStale).toBe(true);
    expect(holders).toEqual([expect.objectContaining({ pid })]);
    await lock.release();
  });

  it('takes over a lock from another host once its heartbeat is older than staleMs', async () => {
    await writeFile(
      lockPath,
      JSON.stringify({ pid: 1, host: 'other-host', token: 't', since: '' }),
    );
    const old = new Date(Date.now() - 10_000);
    await utimes(lockPath, old, old);
    const lock = await acquireFileLock(lockPath, { staleMs: 5000 });
    expect(lock.tookOverStale).toBe(true);
    await lock.release();
  });

  it('keeps waiting for a live holder elsewhere, then times out', async () => {
    await writeFile(
      lockPath,
      JSON.stringify({ pid: 1, host: 'other-host', token: 't', since: '' }),
    );
    await expect(acquireFileLock(lockPath, { waitMs: 300, staleMs: 60_000 })).rejects.toMatchObject(
      {
        code: 'timeout',
      },
    );
  });

  it('keeps a held lock fresh, so a long holder is not judged stale', async () => {
    const lock = await acquireFileLock(lockPath, { staleMs: 300 });
    await sleep(700);
    await expect(acquireFileLock(lockPath, { staleMs: 300, waitMs: 200 })).rejects.toMatchObject({
      code: 'timeout',
    });
    await lock.release();
  });

  it('gives up waiting when aborted', async () => {
    const lock = await acquireFileLock(lockPath);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(acquireFileLock(lockPath, { signal: controller.signal })).rejects.toMatchObject({
      code: 'cancelled',
    });
    await lock.release();
  });

  it('never deletes a lock that is no longer its own', async () => {
    const lock = await acquireFileLock(lockPath);
    const theirs = JSON.stringify({ pid: 1, host: 'other-host', token: 'theirs', since: '' });
    await writeFile(lockPath, theirs);
    await lock.release();
    expect(await readFile(lockPath, 'utf8')).toBe(theirs);
  });

  it('release is idempotent', async () => {
    const lock = await acquireFileLock(lockPath);
    await Promise.all([lock.release(), lock.release()]);
    const again = await acquireFileLock(lockPath, { waitMs: 100 });
    await again.release();
  });
});
