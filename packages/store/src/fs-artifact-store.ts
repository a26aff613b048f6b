import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, open, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { segment } from './artifact-names.js';
import type { ArtifactStore } from './types.js';

export interface FsArtifactStoreOptions {
  /**
   * The directory holding one subdirectory per task (`<root>/<taskId>/<name>`); created on the
   * first write. Conventionally `${config.dataDir}/artifacts`.
   */
  root: string;
}

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

  async get(taskId: string, name: string): Promise<{ body: Readable; size: number } | null> {
    const path = join(this.taskDir(taskId), segment(name, 'name'));
    let file;
    try {
      // Opening first turns a missing file into null here instead of an error on the stream.
      file = await open(path, 'r');
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
    try {
      const info = await file.stat();
      if (!info.isFile()) {
        await file.close();
        return null;
      }
      return { body: file.createReadStream(), size: info.size };
    } catch (err) {
      await file.close();
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

function isNotFound(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}
