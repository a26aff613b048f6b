/** What a path names. */
export type PatchFileKind = 'file' | 'directory' | 'other';

/**
 * The file operations the applier needs, so the same code can work on the sandbox (through its
 * exec channel and file transfer), on local disk (the CLI) or in memory (tests, dry runs).
 *
 * Paths are relative to the implementation's root, already normalised by `normalizePatchPath`:
 * `/`-separated, no `.`, `..` or empty parts. An implementation must still keep every operation
 * inside its root when the tree holds symbolic links (throw an `ApplyPatchError` with code
 * `invalid_path` when one would lead out; a sandbox-backed one can resolve the path with
 * `realpath -m` inside the container and compare it with the workspace). Any other error it
 * throws is reported as an `io_error` naming the operation and path.
 */
export interface PatchFileSystem {
  /** What `path` names, following symbolic links; undefined when nothing is there. */
  stat(path: string): Promise<PatchFileKind | undefined>;
  /** The bytes of a file. */
  readFile(path: string): Promise<Uint8Array>;
  /** Creates or replaces a file with UTF-8 text, creating missing parent directories. */
  writeFile(path: string, contents: string): Promise<void>;
  /** Removes a file (a symbolic link itself, not its target). Never called on a directory. */
  deleteFile(path: string): Promise<void>;
}
