import path from 'node:path';
import type { Sandbox } from '@patchbay/sandbox';
import { ApplyPatchError } from '../apply-patch/errors.js';
import { AbortError } from '../model/index.js';
import type { PatchFileKind, PatchFileSystem } from '../apply-patch/file-system.js';
import { WORKSPACE, isInside } from './workspace.js';

export interface SandboxPatchFileSystemOptions {
  /**
   * Directory patch paths are relative to (the call's workdir). Must be `boundary` or below it.
   * @default '/workspace'
   */
  root?: string;
  /**
   * No operation may reach outside this directory, through `..` or symbolic links.
   * @default '/workspace'
   */
  boundary?: string;
  /** Aborting stops the operation in flight. */
  signal?: AbortSignal;
  /**
   * Timeout of each helper command.
   * @default 60_000
   */
  commandTimeoutMs?: number;
}

/**
 * Prints the resolved path of `$2` (every symbolic link followed, also dangling ones, `realpath
 * -m`), what it is, and its permission bits; `$1` selects whether the last component is followed
 * (`follow`) or kept (`nofollow`, for deleting a link rather than its target). The paths come in
 * as arguments, never spliced into the script, so no file name can change what runs.
 */
const INSPECT_SCRIPT = `set -u
if [ "$1" = nofollow ]; then
  dir=$(realpath -m -- "$(dirname -- "$2")") || exit 3
  p="$dir/$(basename -- "$2")"
else
  p=$(realpath -m -- "$2") || exit 3
fi
printf '%s\\n' "$p"
if [ -L "$p" ]; then echo link
elif [ -d "$p" ]; then echo directory
elif [ -f "$p" ]; then echo file
elif [ -e "$p" ]; then echo other
else echo none; fi`;

/**
 * Writes stdin to `$2`, creating its directory `$1` first: an existing file keeps its mode and
 * owner.
 */
const WRITE_SCRIPT = 'mkdir -p -- "$1" && exec cat > "$2"';

interface Inspected {
  /** Absolute path with every symbolic link resolved (but the last, for `nofollow`). */
  resolved: string;
  kind: PatchFileKind | 'link' | undefined;
}

/**
 * The {@link PatchFileSystem} of `apply_patch` in a sandbox: paths relative to the call's
 * workdir, every operation confined to /workspace.
 *
 * Safety: a path is resolved inside the container (`realpath -m`, which follows symbolic links
 * even when they dangle) before it is read, written or removed, and refused when it lands outside
 * the boundary; so a link in the repository pointing at `/etc` or `~/.ssh` cannot be written
 * through. Files are written by a command running as the sandbox user, like the model's own
 * edits: an existing file keeps its mode (an executable script stays executable).
 */
export class SandboxPatchFileSystem implements PatchFileSystem {
  readonly #sandbox: Sandbox;
  readonly #root: string;
  readonly #boundary: string;
  readonly #signal: AbortSignal | undefined;
  readonly #timeoutMs: number;
  #realBoundary: Promise<string> | undefined;
  /**
   * Paths this instance resolved (followed), by absolute path, kept up to date with its own
   * writes and deletes: an `apply_patch` call stats, reads and writes each file, and each
   * resolution is a few processes in the sandbox. An instance serves one call.
   */
  readonly #resolved = new Map<string, Inspected>();

  constructor(sandbox: Sandbox, options: SandboxPatchFileSystemOptions = {}) {
    this.#sandbox = sandbox;
    this.#boundary = path.posix.resolve(options.boundary ?? WORKSPACE);
    this.#root = path.posix.resolve(this.#boundary, options.root ?? this.#boundary);
    if (!isInside(this.#boundary, this.#root)) {
      throw new RangeError(`root ${this.#root} is outside the boundary ${this.#boundary}`);
    }
    this.#signal = options.signal;
    this.#timeoutMs = options.commandTimeoutMs ?? 60_000;
  }

  async stat(file: string): Promise<PatchFileKind | undefined> {
    const { kind } = await this.#inspect(file, 'follow');
    // A link left after resolving everything is one `realpath -m` could not follow (a loop).
    return kind === 'link' ? 'other' : kind;
  }

  async readFile(file: string): Promise<Uint8Array> {
    const { resolved } = await this.#inspect(file, 'follow');
    return this.#sandbox.readFile(resolved, this.#signal ? { signal: this.#signal } : undefined);
  }

  async writeFile(file: string, contents: string): Promise<void> {
    const { resolved } = await this.#inspect(file, 'follow');
    await this.#run(
      ['sh', '-c', WRITE_SCRIPT, 'sh', path.posix.dirname(resolved), resolved],
      `write ${file}`,
      contents,
    );
    this.#resolved.set(path.posix.resolve(this.#root, file), { resolved, kind: 'file' });
  }

  async deleteFile(file: string): Promise<void> {
    const { resolved } = await this.#inspect(file, 'nofollow');
    await this.#run(['rm', '-f', '--', resolved], `delete ${file}`);
    this.#resolved.delete(path.posix.resolve(this.#root, file));
  }

  async #inspect(file: string, mode: 'follow' | 'nofollow'): Promise<Inspected> {
    const boundary = await (this.#realBoundary ??= this.#resolveBoundary());
    const absolute = path.posix.resolve(this.#root, file);
    // `..` never reaches here (normalizePatchPath), but a caller other than the applier might.
    if (!isInside(this.#boundary, absolute)) throw outside(file, 'the path');
    const known = mode === 'follow' ? this.#resolved.get(absolute) : undefined;
    if (known !== undefined) return known;
    const out = await this.#run(
      ['sh', '-c', INSPECT_SCRIPT, 'sh', mode, absolute],
      `inspect ${file}`,
    );
    const [resolved, kind] = out.split('\n');
    if (resolved === undefined || !resolved.startsWith('/') || kind === undefined) {
      throw new Error(`could not resolve ${file}: unexpected answer ${JSON.stringify(out)}`);
    }
    if (!isInside(boundary, resolved)) throw outside(file, 'a symbolic link on the way');
    const inspected: Inspected = {
      resolved,
      kind: kind === 'none' ? undefined : (kind as PatchFileKind | 'link'),
    };
    if (mode === 'follow') this.#resolved.set(absolute, inspected);
    return inspected;
  }

  async #resolveBoundary(): Promise<string> {
    const out = await this.#run(['realpath', '-m', '--', this.#boundary], 'resolve the workspace');
    return out.replace(/\n$/, '');
  }

  /** Runs a helper command; its failure is an error the applier reports as `io_error`. */
  async #run(argv: readonly string[], what: string, stdin?: string): Promise<string> {
    const result = await this.#sandbox.exec(argv, {
      timeoutMs: this.#timeoutMs,
      maxOutputBytes: 64 * 1024,
      ...(stdin === undefined ? {} : { stdin }),
      ...(this.#signal ? { signal: this.#signal } : {}),
    });
    const output = result.output.toString('utf8');
    if (result.aborted) throw new AbortError(this.#signal?.reason);
    if (result.exitCode !== 0) {
      const why = result.timedOut ? 'timed out' : `exited with ${result.exitCode ?? result.signal}`;
      throw new Error(
        `could not ${what}: ${why}${output.trim() === '' ? '' : `: ${output.trim()}`}`,
      );
    }
    return output;
  }
}

function outside(file: string, what: string): ApplyPatchError {
  return new ApplyPatchError(
    'invalid_path',
    `Invalid path ${file}: ${what} leads outside the working directory`,
  );
}
