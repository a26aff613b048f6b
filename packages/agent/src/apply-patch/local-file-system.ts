import { lstat, mkdir, readFile, realpath, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { ApplyPatchError } from './errors.js';
import type { PatchFileKind, PatchFileSystem } from './file-system.js';

function hasCode(err: unknown, ...codes: string[]): boolean {
  return (
    typeof err === 'object' &&
    err !== null &&
    'code' in err &&
    typeof err.code === 'string' &&
    codes.includes(err.code)
  );
}

function isInside(root: string, candidate: string): boolean {
  const relative = path.relative(root, candidate);
  return (
    relative === '' ||
    (relative !== '..' && !relative.startsWith(`..${path.sep}`) && !path.isAbsolute(relative))
  );
}

/**
 * A {@link PatchFileSystem} on local disk under `root` (the CLI's working directory).
 *
 * Paths never leave `root`: `..` is refused before this class sees a path, and every symbolic
 * link met on the way to a file is resolved and must land inside `root` (the real path of it).
 * A link that points nowhere is refused too, since writing through it could create a file
 * anywhere. Checks and writes are separate system calls, so this guards against a patch, not
 * against another process changing the tree at the same moment.
 */
export class LocalPatchFileSystem implements PatchFileSystem {
  private readonly root: string;
  private realRoot: Promise<string> | undefined;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  async stat(file: string): Promise<PatchFileKind | undefined> {
    const absolute = await this.resolve(file, true);
    try {
      const info = await stat(absolute);
      return info.isFile() ? 'file' : info.isDirectory() ? 'directory' : 'other';
    } catch (err) {
      if (hasCode(err, 'ENOENT', 'ENOTDIR')) return undefined;
      throw err;
    }
  }

  async readFile(file: string): Promise<Uint8Array> {
    return readFile(await this.resolve(file, true));
  }

  async writeFile(file: string, contents: string): Promise<void> {
    const absolute = await this.resolve(file, true);
    await mkdir(path.dirname(absolute), { recursive: true });
    await writeFile(absolute, contents, 'utf8');
  }

  async deleteFile(file: string): Promise<void> {
    // Like `rm`, deleting a symbolic link removes the link, not what it points to.
    await unlink(await this.resolve(file, false));
  }

  /** The absolute path of `file`, with every symbolic link on the way checked and resolved. */
  private async resolve(file: string, followLast: boolean): Promise<string> {
    this.realRoot ??= realpath(this.root);
    const root = await this.realRoot;
    const parts = file.split('/');
    let current = root;
    for (const [index, part] of parts.entries()) {
      const next = path.join(current, part);
      let isLink: boolean;
      try {
        isLink = (await lstat(next)).isSymbolicLink();
      } catch (err) {
        // Nothing there: the rest will be created as plain directories and a file.
        if (hasCode(err, 'ENOENT', 'ENOTDIR')) return path.join(next, ...parts.slice(index + 1));
        throw err;
      }
      if (!isLink || (index === parts.length - 1 && !followLast)) {
        current = next;
        continue;
      }
      const link = parts.slice(0, index + 1).join('/');
      let target: string;
      try {
        target = await realpath(next);
      } catch (err) {
        if (!hasCode(err, 'ENOENT', 'ELOOP', 'ENOTDIR')) throw err;
        throw new ApplyPatchError(
          'invalid_path',
          `Invalid path ${file}: the symbolic link ${link} points to nothing`,
          { cause: err },
        );
      }
      if (!isInside(root, target)) {
        throw new ApplyPatchError(
          'invalid_path',
          `Invalid path ${file}: the symbolic link ${link} leads outside the working directory`,
        );
      }
      current = target;
    }
    return current;
  }
}
