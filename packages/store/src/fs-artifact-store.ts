import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { PatchbayError } from '@patchbay/core';
import type { ArtifactStore } from './types.js';

export interface FsArtifactStoreOptions {
  /**
   * The directory holding one subdirectory per task (`<root>/<taskId>/<name>`); created on the
   * first write. Conventionally `${config.dataDir}/artifacts`.
   */
  root: string;
}

/**
 * Task ids and artifact names become path segments, so they are held to a plain alphabet with no
 * leading dot: no `..`, no separators, no hidden files, and no clash with our own `.tmp-*` files.
 */
const SAFE_SEGMENT = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

/**
 * Artifacts on the local filesystem. Writes go to a temporary file in the same directory, are
 * fsynced, then renamed into place: a reader sees the old artifact or the whole new one, never a
 * half-written one, and a crash mid-write leaves only a `.tmp-*` file behind.
 */
export class FsArtifactStore implements ArtifactStore {
  private readonly root: string;

  constructor(options: FsArtifactStoreOptions) {
    this.root = options.root;
  }

  async put(taskId: string, name: string, body: Buffer | string | Readable): Promise<void> {
    const dir = this.taskDir(taskId);
    const target = join(dir, segment(name, 'name'));
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.tmp-${randomBytes(6).toString('hex')}-${name}`);
    // `flush` fsyncs before close: after the rename the content is on disk, not just named.
    const out = createWriteStream(tmp, { flags: 'wx', mode: 0o640, flush: true });
    try {
      const source =
        body instanceof Readable
          ? body
          : Readable.from([typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
      await pipeline(source, out);
      await rename(tmp, target);
    } catch (err) {
      // A source that fails at once can beat the file's open: wait for the stream to close, or
      // the file would appear after it was removed.
      if (!out.closed) await once(out, 'close').catch(() => {});
      await unlink(tmp).catch(() => {});
      throw err;
    }
  }

  async get(taskId: string, name: string): Promise<Readable | null> {
    const path = join(this.taskDir(taskId), segment(name, 'name'));
    try {
      // Opening first turns a missing file into null here instead of an error on the stream.
      const file = await open(path, 'r');
      return file.createReadStream();
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async size(taskId: string, name: string): Promise<number | null> {
    try {
      const info = await stat(join(this.taskDir(taskId), segment(name, 'name')));
      return info.isFile() ? info.size : null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  async remove(taskId: string): Promise<void> {
    await rm(this.taskDir(taskId), { recursive: true, force: true });
  }

  private taskDir(taskId: string): string {
    return join(this.root, segment(taskId, 'taskId'));
  }
}

function segment(value: string, field: string): string {
  if (!SAFE_SEGMENT.test(value)) {
    throw new PatchbayError(
      'validation_error',
      `${field} must be 1-200 characters of A-Z a-z 0-9 . _ - and not start with a dot`,
      { details: { field } },
    );
  }
  return value;
}

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
