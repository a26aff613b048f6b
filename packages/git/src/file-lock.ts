import { randomBytes } from 'node:crypto';
import { link, open, readFile, rename, stat, unlink, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { PatchbayError } from '@patchbay/core';

export interface FileLockOptions {
  /**
   * A lock whose holder stopped refreshing it this long ago is stale and may be taken over.
   * Holders refresh every third of it.
   * @default 30_000
   */
  staleMs?: number;
  /**
   * Longest wait for the lock before giving up with `timeout`.
   * @default 600_000
   */
  waitMs?: number;
  /** Aborting gives up waiting (`cancelled`). */
  signal?: AbortSignal;
  /** Called when a stale lock was taken over, with what its file said. */
  onStale?: (holder: LockHolder | undefined) => void;
}

/** What a lock file records about its holder. */
export interface LockHolder {
  pid: number;
  host: string;
  token: string;
  since: string;
}

export interface FileLock {
  /** True when the lock was taken over from a holder that died or stalled. */
  readonly tookOverStale: boolean;
  /** Releases the lock (only if it is still ours). Idempotent. */
  release(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it just is not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const value = JSON.parse(text) as Partial<LockHolder>;
    if (typeof value.pid === 'number' && typeof value.host === 'string') {
      return {
        pid: value.pid,
        host: value.host,
        token: String(value.token),
        since: String(value.since),
      };
    }
  } catch {
    // A holder that died between creating the file and writing it leaves it empty.
  }
  return undefined;
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException).code;

/**
 * A lock shared by every process that sees the same directory, e.g. two workers sharing a data
 * dir: the lock is a file created with `O_EXCL` (`wx`), which only one process can win.
 *
 * A holder refreshes the file's mtime while it holds the lock. A lock is stale when its holder
 * is a process on this host that no longer exists (a SIGKILLed worker is recovered from at
 * once), or when its mtime is older than `staleMs` (a holder on another host, or a hung one).
 * A stale lock is moved aside with `rename` (atomic, so of two processes breaking it only one
 * succeeds) and the moved file is checked to be the one judged stale; should a live lock have
 * been moved by mistake, it is put back with `link`, which never overwrites.
 */
export async function acquireFileLock(
  path: string,
  options: FileLockOptions = {},
): Promise<FileLock> {
  const staleMs = options.staleMs ?? 30_000;
  const deadline = Date.now() + (options.waitMs ?? 600_000);
  const host = hostname();
  const token = randomBytes(12).toString('hex');
  const me: LockHolder = { pid: process.pid, host, token, since: new Date().toISOString() };
  let tookOverStale = false;
  let delay = 20;

  for (;;) {
    if (options.signal?.aborted) {
      throw new PatchbayError('cancelled', 'gave up waiting for a repository lock');
    }
    try {
      const handle = await open(path, 'wx', 0o600);
      try {
        await handle.writeFile(JSON.stringify(me));
      } finally {
        await handle.close();
      }
      return held(path, token, staleMs, tookOverStale);
    } catch (err) {
      if (errno(err) !== 'EEXIST') throw err;
    }

    let content: string;
    let mtimeMs: number;
    try {
      [content, mtimeMs] = await Promise.all([
        readFile(path, 'utf8'),
        stat(path).then((s) => s.mtimeMs),
      ]);
    } catch (err) {
      if (errno(err) === 'ENOENT') continue; // released meanwhile: try again at once
      throw err;
    }
    const holder = parseHolder(content);
    const deadHere = holder !== undefined && holder.host === host && !isAlive(holder.pid);
    const expired = Date.now() - mtimeMs > staleMs;
    if (deadHere || expired) {
      if (await breakStale(path, content)) {
        tookOverStale = true;
        options.onStale?.(holder);
      }
      continue;
    }

    if (Date.now() >= deadline) {
      throw new PatchbayError('timeout', 'timed out waiting for a repository lock', {
        details: { holder: holder ? { pid: holder.pid, host: holder.host } : null },
      });
    }
    try {
      await sleep(delay, undefined, options.signal ? { signal: options.signal } : undefined);
    } catch {
      throw new PatchbayError('cancelled', 'gave up waiting for a repository lock');
    }
    delay = Math.min(delay * 2, 500);
  }
}

/** Moves a stale lock aside. True when the file moved was indeed the stale one. */
async function breakStale(path: string, staleContent: string): Promise<boolean> {
  const aside = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, aside);
  } catch (err) {
    if (errno(err) === 'ENOENT') return false; // someone else broke it first
    throw err;
  }
  const moved = await readFile(aside, 'utf8').catch(() => staleContent);
  if (moved !== staleContent) {
    // Between our look and our rename, another process broke the stale lock and took it. Give
    // it its file back unless the slot was taken again meanwhile.
    await link(aside, path).catch(() => undefined);
    await unlink(aside).catch(() => undefined);
    return false;
  }
  await unlink(aside).catch(() => undefined);
  return true;
}

function held(path: string, token: string, staleMs: number, tookOverStale: boolean): FileLock {
  const heartbeat = setInterval(
    () => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    },
    Math.max(Math.floor(staleMs / 3), 10),
  );
  heartbeat.unref();
  let released: Promise<void> | undefined;
  return {
    tookOverStale,
    release: () =>
      (released ??= (async () => {
        clearInterval(heartbeat);
        // Only delete the file if it is still ours: after a stall long enough to be judged
        // stale, it may belong to someone else now.
        const content = await readFile(path, 'utf8').catch(() => undefined);
        if (content !== undefined && parseHolder(content)?.token === token) {
          await unlink(path).catch(() => undefined);
        }
      })()),
  };
}
