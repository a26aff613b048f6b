import type { PatchFileKind, PatchFileSystem } from './file-system.js';

function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

/**
 * A {@link PatchFileSystem} held in memory: for tests, and for trying a patch on copies of a few
 * files before touching the real ones. No symbolic links; directories exist when created
 * explicitly or as the parent of a file.
 */
export class MemoryPatchFileSystem implements PatchFileSystem {
  private readonly files = new Map<string, Uint8Array>();
  private readonly directories = new Set<string>();

  /** @param files initial files by normalised path; text is stored as UTF-8. */
  constructor(files: Record<string, string | Uint8Array> = {}) {
    for (const [path, contents] of Object.entries(files)) this.put(path, contents);
  }

  async stat(path: string): Promise<PatchFileKind | undefined> {
    if (this.files.has(path)) return 'file';
    if (this.directories.has(path)) return 'directory';
    return undefined;
  }

  async readFile(path: string): Promise<Uint8Array> {
    const contents = this.files.get(path);
    if (contents !== undefined) return contents;
    if (this.directories.has(path))
      throw fsError('EISDIR', `illegal operation on a directory, read '${path}'`);
    throw fsError('ENOENT', `no such file or directory, open '${path}'`);
  }

  async writeFile(path: string, contents: string): Promise<void> {
    this.put(path, contents);
  }

  async deleteFile(path: string): Promise<void> {
    if (!this.files.delete(path)) {
      throw fsError('ENOENT', `no such file or directory, unlink '${path}'`);
    }
  }

  /** Creates a directory and its parents. */
  mkdir(path: string): void {
    const parts = path.split('/');
    for (let i = 1; i <= parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      if (this.files.has(dir)) throw fsError('ENOTDIR', `not a directory, mkdir '${path}'`);
      this.directories.add(dir);
    }
  }

  /** Every file as UTF-8 text (invalid bytes replaced), by path, sorted. */
  snapshot(): Record<string, string> {
    const decoder = new TextDecoder('utf-8', { ignoreBOM: true });
    return Object.fromEntries(
      [...this.files.entries()]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([path, bytes]) => [path, decoder.decode(bytes)]),
    );
  }

  /** Every directory, sorted. */
  listDirectories(): string[] {
    return [...this.directories].sort();
  }

  private put(path: string, contents: string | Uint8Array): void {
    if (this.directories.has(path)) {
      throw fsError('EISDIR', `illegal operation on a directory, open '${path}'`);
    }
    const parent = path.split('/').slice(0, -1).join('/');
    if (parent !== '') this.mkdir(parent);
    this.files.set(
      path,
      typeof contents === 'string' ? new TextEncoder().encode(contents) : contents,
    );
  }
}
