import { constants } from 'node:os';
import { Readable } from 'node:stream';
import { type Logger, PatchbayError } from '@patchbay/core';
import type { ExecChannel } from './channel.js';
import type { ExitFrame } from './protocol.js';
import { RelayEnd } from './relay.js';
import type {
  ExecOptions,
  ExecResult,
  Reach,
  Sandbox,
  SandboxService,
  SandboxSpec,
} from '../types.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** @see ExecOptions.timeoutMs */
const DEFAULT_TIMEOUT_MS = 120_000;
/** @see ExecOptions.maxOutputBytes */
const DEFAULT_MAX_OUTPUT = 1 * MiB;
/** Largest output cap a caller may ask for: the exec server holds up to this much in memory. */
const MAX_OUTPUT_CAP = 256 * MiB;
const DEFAULT_READ_MAX = 16 * MiB;
/** Stdin bytes in flight per command before the server acknowledges them. */
const STDIN_WINDOW = 4 * MiB;
const STDIN_PIECE = 256 * KiB;
/** Output bytes of a raw (file transfer) command in flight before the reader consumes them. */
const RAW_WINDOW = 4 * MiB;
/** Error output kept from file-transfer commands. */
const ERROR_OUTPUT = 64 * KiB;
/**
 * How long the server may take to report a command it should have killed (timeout or abort)
 * before the channel is declared hung. Killing a tree takes milliseconds; this is for a wedged
 * container.
 */
const KILL_GRACE_MS = 15_000;
const U32_MAX = 0xffffffff;

const signalNames = new Map<number, string>(
  Object.entries(constants.signals).map(([name, num]) => [num, name]),
);
const SIGKILL = constants.signals.SIGKILL;

interface RunRequest {
  argv: readonly string[];
  cwd: string;
  env: Readonly<Record<string, string>>;
  /** 0: none. */
  timeoutMs: number;
  maxOutputBytes: number;
  raw: boolean;
  stdin: Buffer | Readable | undefined;
  signal: AbortSignal | undefined;
  onOut(stream: 'stdout' | 'stderr', data: Buffer, tail: boolean): void;
}

interface RunHandle {
  done: Promise<{ exit: ExitFrame; aborted: boolean }>;
  /** More output a raw command may send. */
  credit(bytes: number): void;
  kill(): void;
}

function sandboxError(message: string, details?: Record<string, unknown>): PatchbayError {
  return new PatchbayError('sandbox_error', message, details === undefined ? {} : { details });
}

function cancelled(what: string): PatchbayError {
  return new PatchbayError('cancelled', `${what} was cancelled`);
}

function noNul(value: string, what: string): string {
  if (value.includes('\0')) throw sandboxError(`${what} contains a NUL byte`);
  return value;
}

function outputTail(output: Buffer): string {
  return output.toString('utf8').trim().slice(-2000);
}

/** What the exec half needs of the engine's half. */
export interface ChannelSandboxInit {
  /** The engine's id of the sandbox. */
  id: string;
  /** Its name, for logs and errors. */
  name: string;
  createdAt: Date;
  channel: ExecChannel;
  spec: SandboxSpec;
  /** The exec server's path in the sandbox (it is the relay too). */
  execServerPath: string;
  /** Timeout of a file transfer (tar in or out, one file). */
  transferTimeoutMs: number;
  logger: Logger;
}

/** How the engine saw the sandbox when its channel died, for the error that says why. */
export interface EngineState {
  /** e.g. `container exited with code 137`. */
  summary: string;
  oomKilled: boolean;
  exitCode?: number;
}

/**
 * A sandbox reached through the exec channel to its `pb-execd`: exec, files, archives, quiesce
 * and reaching the worker's services, the same on every engine. An engine's folder extends it
 * with what only the engine can do: remove the sandbox, change its network, say what state it
 * is in.
 */
export abstract class ChannelSandbox implements Sandbox {
  readonly id: string;
  /** The sandbox's name (also its key in the reaper's view of this process). */
  name: string;
  readonly createdAt: Date;
  /** What the pool put here before a task took it (set by the pool's provider). */
  preloaded: string | undefined = undefined;
  #spec: Readonly<SandboxSpec>;
  readonly #channel: ExecChannel;
  readonly #o: Omit<ChannelSandboxInit, 'id' | 'name' | 'createdAt' | 'channel' | 'spec'>;
  #diagnosis: Promise<PatchbayError> | undefined;
  #destroyed: Promise<void> | undefined;
  #extraEnv: Record<string, string> = {};

  constructor(init: ChannelSandboxInit) {
    this.id = init.id;
    this.name = init.name;
    this.createdAt = init.createdAt;
    this.#channel = init.channel;
    this.#spec = Object.freeze({ ...init.spec });
    this.#o = {
      execServerPath: init.execServerPath,
      transferTimeoutMs: init.transferTimeoutMs,
      logger: init.logger,
    };
    this.#channel.onDeath = (err) => {
      this.#o.logger.warn({ sandbox: this.name, err }, 'sandbox exec channel died');
      void this.#diagnose(err);
    };
  }

  get spec(): Readonly<SandboxSpec> {
    return this.#spec;
  }

  /** A new spec, when a provider hands a pooled sandbox to a task. */
  protected set spec(spec: SandboxSpec) {
    this.#spec = Object.freeze({ ...spec });
  }

  get broken(): boolean {
    return this.#channel.death !== undefined;
  }

  /** Removes the sandbox from its engine; "already gone" is success. */
  protected abstract remove(): Promise<void>;

  /** The engine's view of the sandbox, when it can tell; undefined when it cannot. */
  protected abstract engineState(): Promise<EngineState | undefined>;

  abstract disableNetwork(): Promise<void>;

  /** Fails once the sandbox was destroyed. */
  protected assertAlive(): void {
    if (this.#destroyed !== undefined) throw sandboxError(`sandbox ${this.name} was destroyed`);
  }

  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const argv = typeof command === 'string' ? ['bash', '-lc', command] : [...command];
    if (argv.length === 0) throw sandboxError('exec needs a command');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!(timeoutMs > 0)) throw sandboxError(`timeoutMs must be positive, got ${timeoutMs}`);
    const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
    if (
      !Number.isSafeInteger(maxOutputBytes) ||
      maxOutputBytes < 0 ||
      maxOutputBytes > MAX_OUTPUT_CAP
    )
      throw sandboxError(`maxOutputBytes must be a whole number up to ${MAX_OUTPUT_CAP}`);
    const stdin = options.stdin === undefined ? undefined : Buffer.from(options.stdin);
    if (options.signal?.aborted) {
      return {
        exitCode: null,
        signal: null,
        output: Buffer.alloc(0),
        headBytes: 0,
        droppedBytes: 0,
        durationMs: 0,
        timedOut: false,
        aborted: true,
        oomKilled: false,
      };
    }
    const chunks: Buffer[] = [];
    let headBytes = 0;
    const onOutput = options.onOutput;
    const handle = await this.#run({
      argv,
      cwd: options.cwd ?? '/workspace',
      env: { ...this.#spec.env, ...this.#extraEnv, ...options.env },
      timeoutMs: Math.min(Math.ceil(timeoutMs), U32_MAX),
      maxOutputBytes,
      raw: false,
      stdin,
      signal: options.signal,
      onOut: (stream, data, tail) => {
        const copy = Buffer.from(data);
        chunks.push(copy);
        if (!tail) headBytes += copy.length;
        if (onOutput !== undefined) {
          try {
            onOutput(copy, stream);
          } catch (err) {
            this.#o.logger.warn({ sandbox: this.name, err }, 'onOutput callback threw');
          }
        }
      },
    });
    const { exit, aborted } = await handle.done;
    const signal =
      exit.signal === null ? null : (signalNames.get(exit.signal) ?? `SIG${exit.signal}`);
    const killedByKernel = exit.signal === SIGKILL || exit.exitCode === 128 + SIGKILL;
    return {
      exitCode: exit.exitCode,
      signal,
      output: Buffer.concat(chunks),
      headBytes,
      droppedBytes: exit.droppedBytes,
      durationMs: exit.durationMs,
      timedOut: exit.timedOut,
      aborted,
      // The cgroup counted an OOM kill while the command ran, and it died of SIGKILL that we
      // did not send: the kernel's OOM killer ended it.
      oomKilled: exit.oom && killedByKernel && !exit.timedOut && !aborted,
    };
  }

  async readFile(
    path: string,
    options: { maxBytes?: number; signal?: AbortSignal } = {},
  ): Promise<Buffer> {
    const maxBytes = options.maxBytes ?? DEFAULT_READ_MAX;
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0)
      throw sandboxError('maxBytes must be a whole number');
    if (options.signal?.aborted) throw cancelled(`reading ${path}`);
    const data: Buffer[] = [];
    let size = 0;
    let errors = '';
    const handle = await this.#raw(
      // One byte more than allowed tells "too large" from "exactly the limit" without reading
      // a huge file through.
      ['head', '-c', String(maxBytes + 1), '--', noNul(path, 'path')],
      options.signal,
      (stream, chunk) => {
        if (stream === 'stdout') {
          size += chunk.length;
          // `head` cannot send more; anything beyond is forged, and is not kept.
          if (size > maxBytes + 1) {
            this.#channel.close(new Error('the exec stream sent more of a file than asked for'));
            return;
          }
          data.push(Buffer.from(chunk));
        } else if (errors.length < ERROR_OUTPUT) {
          errors += chunk.toString('utf8');
        }
        handle.credit(chunk.length);
      },
    );
    const { exit, aborted } = await handle.done;
    if (aborted) throw cancelled(`reading ${path}`);
    if (exit.exitCode !== 0) {
      throw sandboxError(`reading ${path} failed: ${errors.trim().slice(-2000)}`, { path });
    }
    if (size > maxBytes) {
      throw sandboxError(`${path} is larger than ${maxBytes} bytes`, { path, maxBytes });
    }
    return Buffer.concat(data, size);
  }

  async writeFile(
    path: string,
    data: Buffer | string,
    options: { mode?: number; signal?: AbortSignal } = {},
  ): Promise<void> {
    if (options.mode !== undefined && !(Number.isInteger(options.mode) && options.mode >= 0))
      throw sandboxError('mode must be a file mode such as 0o644');
    if (options.signal?.aborted) throw cancelled(`writing ${path}`);
    const script =
      'mkdir -p -- "$(dirname -- "$1")" && cat > "$1" && { [ -z "$2" ] || chmod "$2" -- "$1"; }';
    const result = await this.#collect(
      ['sh', '-c', script, 'sh', noNul(path, 'path'), options.mode?.toString(8) ?? ''],
      Buffer.from(data),
      options.signal,
    );
    if (result.aborted) throw cancelled(`writing ${path}`);
    if (result.exitCode !== 0)
      throw sandboxError(`writing ${path} failed: ${outputTail(result.output)}`, { path });
  }

  async putArchive(
    tar: Readable,
    options: { path?: string; signal?: AbortSignal; keepExisting?: boolean; gzip?: boolean } = {},
  ): Promise<void> {
    const dir = noNul(options.path ?? '/workspace', 'path');
    if (options.signal?.aborted) throw cancelled(`extracting into ${dir}`);
    // Extracted inside the sandbox by the unprivileged user's GNU tar (leading slashes
    // stripped, `..` members refused, owners not kept): whatever an archive could reach, the
    // sandbox's own commands can reach anyway, and the host never parses it.
    const flags = `${options.gzip ? ' -z' : ''}${options.keepExisting ? ' --skip-old-files' : ''}`;
    const script = `mkdir -p -- "$1" && exec tar -x -f - -C "$1" --no-same-owner${flags}`;
    const result = await this.#collect(['sh', '-c', script, 'sh', dir], tar, options.signal);
    if (result.aborted) throw cancelled(`extracting into ${dir}`);
    if (result.exitCode !== 0)
      throw sandboxError(`extracting into ${dir} failed: ${outputTail(result.output)}`, {
        path: dir,
      });
  }

  async getArchive(path: string, options: { signal?: AbortSignal } = {}): Promise<Readable> {
    if (options.signal?.aborted) throw cancelled(`archiving ${path}`);
    // Like the engine's archive API: the tar's one top-level entry is the path's last part.
    // The existence check comes first because tar writes an (empty) archive before failing.
    const script =
      '[ -e "$1" ] || [ -L "$1" ] || { echo "$1: No such file or directory" >&2; exit 2; }; ' +
      'cd -- "$(dirname -- "$1")" && exec tar -c -f - -- "$(basename -- "$1")"';
    let pendingCredit = 0;
    let handedOut = false;
    let errors = '';
    const out = new Readable({
      read: () => {
        // The reader wants more: let the server send what was held back.
        if (pendingCredit > 0) handle.credit(pendingCredit);
        pendingCredit = 0;
      },
      destroy: (err, callback) => {
        handle.kill();
        callback(err);
      },
    });
    let firstByte!: () => void;
    const ready = new Promise<void>((resolve) => (firstByte = resolve));
    const handle = await this.#raw(
      ['sh', '-c', script, 'sh', noNul(path, 'path')],
      options.signal,
      (stream, chunk) => {
        if (stream === 'stderr') {
          if (errors.length < ERROR_OUTPUT) errors += chunk.toString('utf8');
          handle.credit(chunk.length);
          return;
        }
        firstByte();
        // Credit goes back only as the reader takes data, so a slow reader stalls tar inside
        // the container rather than filling the worker's memory.
        if (out.push(Buffer.from(chunk))) handle.credit(chunk.length);
        else pendingCredit += chunk.length;
      },
    );
    const failure = (exit: ExitFrame, aborted: boolean): PatchbayError | undefined => {
      if (aborted) return cancelled(`archiving ${path}`);
      if (exit.exitCode !== 0)
        return sandboxError(`archiving ${path} failed: ${errors.trim().slice(-2000)}`, { path });
      return undefined;
    };
    const finished = handle.done.then(
      ({ exit, aborted }) => {
        const err = failure(exit, aborted);
        if (err === undefined) out.push(null);
        // An error the caller was not given the stream for is thrown from this call instead.
        else out.destroy(handedOut ? err : undefined);
        return err;
      },
      (err: unknown) => {
        out.destroy(handedOut ? (err as Error) : undefined);
        return err as Error;
      },
    );
    const first = await Promise.race([ready.then(() => 'data' as const), finished]);
    if (first instanceof Error) throw first;
    handedOut = true;
    return out;
  }

  async quiesce(options: { timeoutMs?: number } = {}): Promise<{ killed: number }> {
    this.assertAlive();
    const { killed, left } = await this.#channel
      .quiesce(options.timeoutMs ?? 30_000)
      .catch(async (err: unknown) => {
        throw await this.#failure(err as Error);
      });
    if (left > 0) throw sandboxError(`${left} processes were still in the sandbox after killing`);
    return { killed };
  }

  /**
   * Checked from inside, where it matters: only the loopback interface may be left once the
   * engine took the network away.
   */
  protected async assertOnlyLoopback(): Promise<void> {
    const dev = await this.exec(['cat', '/proc/net/dev'], { timeoutMs: 30_000 });
    const interfaces = dev.output
      .toString()
      .split('\n')
      .slice(2)
      .map((line) => line.split(':')[0]!.trim())
      .filter((name) => name !== '');
    if (dev.exitCode !== 0 || interfaces.some((name) => name !== 'lo'))
      throw sandboxError(`the network is still there after removing it: ${interfaces.join(', ')}`);
  }

  async reach(service: SandboxService, options: { signal?: AbortSignal } = {}): Promise<Reach> {
    if (options.signal?.aborted) throw cancelled(`reaching ${service.name}`);
    // The relay's frames arrive only after the command started, so `handle` is set by then.
    // eslint-disable-next-line prefer-const
    let handle: RunHandle;
    const end = new RelayEnd(service, (bytes) => handle.credit(bytes));
    handle = await this.#raw(
      [this.#o.execServerPath, 'relay'],
      options.signal,
      (stream, chunk) => {
        if (stream === 'stderr') {
          this.#o.logger.warn({ sandbox: this.name, said: chunk.toString() }, 'relay said');
          handle.credit(chunk.length);
          return;
        }
        try {
          end.push(chunk);
        } catch (err) {
          this.#o.logger.warn({ sandbox: this.name, err }, 'the relay broke its protocol');
          end.close();
          handle.kill();
        }
      },
      { stdin: end.input, timeoutMs: 0 },
    );
    const exited = handle.done.then(
      ({ exit }) =>
        sandboxError(`the relay to ${service.name} exited (${exit.exitCode ?? exit.signal})`),
      (err: unknown) => err as Error,
    );
    const port = await Promise.race([end.ready, exited]);
    if (typeof port !== 'number') {
      end.close();
      throw port;
    }
    void exited.then(() => end.close());
    let released: Promise<void> | undefined;
    return {
      url: `http://127.0.0.1:${port}`,
      release: () =>
        (released ??= (async () => {
          end.close();
          handle.kill();
          await handle.done.catch(() => {});
        })()),
    };
  }

  addEnv(vars: Record<string, string>): void {
    this.#extraEnv = { ...this.#extraEnv, ...vars };
  }

  destroy(): Promise<void> {
    this.#destroyed ??= (async () => {
      this.#channel.close(sandboxError(`sandbox ${this.name} was destroyed`));
      await this.remove();
    })();
    return this.#destroyed;
  }

  /**
   * A raw command (file transfer, the relay): everything it prints, as far as the caller grants
   * credit; a transfer's timeout unless told otherwise.
   */
  #raw(
    argv: readonly string[],
    signal: AbortSignal | undefined,
    onOut: RunRequest['onOut'],
    options: { stdin?: Readable; timeoutMs?: number } = {},
  ): Promise<RunHandle> {
    return this.#run({
      argv,
      cwd: '/workspace',
      env: {},
      timeoutMs: options.timeoutMs ?? this.#o.transferTimeoutMs,
      maxOutputBytes: 0,
      raw: true,
      stdin: options.stdin,
      signal,
      onOut,
    });
  }

  /** Runs a command to its end, keeping the last {@link ERROR_OUTPUT} bytes of its output. */
  async #collect(
    argv: readonly string[],
    stdin: Buffer | Readable,
    signal: AbortSignal | undefined,
  ): Promise<{ exitCode: number | null; output: Buffer; aborted: boolean }> {
    const chunks: Buffer[] = [];
    const handle = await this.#run({
      argv,
      cwd: '/workspace',
      env: {},
      timeoutMs: this.#o.transferTimeoutMs,
      maxOutputBytes: ERROR_OUTPUT,
      raw: false,
      stdin,
      signal,
      onOut: (_stream, data) => chunks.push(Buffer.from(data)),
    });
    const { exit, aborted } = await handle.done;
    return { exitCode: exit.exitCode, output: Buffer.concat(chunks), aborted };
  }

  /** Why the sandbox broke, worked out once: the container's state says more than the socket. */
  #diagnose(cause: Error): Promise<PatchbayError> {
    this.#diagnosis ??= (async () => {
      if (this.#destroyed !== undefined) return sandboxError(`sandbox ${this.name} was destroyed`);
      // Already removed, or the engine is gone: the channel's own error has to do.
      const state = await this.engineState().catch(() => undefined);
      const stderr = this.#channel.serverStderr.trim();
      const parts = [`sandbox ${this.name} is broken: its exec channel died (${cause.message})`];
      if (state !== undefined) {
        parts.push(state.summary);
        if (state.oomKilled) parts.push('the OOM killer fired in it');
      }
      if (stderr !== '') parts.push(`exec server said: ${stderr.slice(-500)}`);
      return sandboxError(parts.join('; '), {
        containerId: this.id,
        oomKilled: state?.oomKilled ?? false,
        ...(state?.exitCode === undefined ? {} : { exitCode: state.exitCode }),
      });
    })();
    return this.#diagnosis;
  }

  async #failure(cause: Error): Promise<PatchbayError> {
    if (cause instanceof PatchbayError) return cause;
    return this.#diagnose(cause);
  }

  async #run(req: RunRequest): Promise<RunHandle> {
    this.assertAlive();
    const death = this.#channel.death;
    if (death !== undefined) throw await this.#failure(death);
    for (const a of req.argv) noNul(a, 'argument');
    noNul(req.cwd, 'cwd');
    const env = Object.entries(req.env).map(([k, v]) => {
      if (k === '' || k.includes('=') || k.includes('\0'))
        throw sandboxError(`invalid environment variable name ${JSON.stringify(k)}`);
      return `${k}=${noNul(v, `environment variable ${k}`)}`;
    });

    let aborted = false;
    let ended = false;
    let inflight = 0;
    let wake: (() => void) | undefined;
    let watchdog: NodeJS.Timeout | undefined;
    let stdinError: unknown;
    const wakePump = (): void => {
      const w = wake;
      wake = undefined;
      w?.();
    };
    const armWatchdog = (ms: number): void => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => {
        this.#channel.close(new Error('the exec server did not end a command it had to kill'));
      }, ms);
      watchdog.unref();
    };

    // The exec server enforces the output limits, but whatever runs in the sandbox can write
    // into the stream too (through the init process's pipes): hold it to the same limits here,
    // so a hostile sandbox can break its own channel but never fill the worker's memory.
    const headCap = Math.floor(req.maxOutputBytes / 2);
    const tailCap = req.maxOutputBytes - headCap;
    let headBytes = 0;
    let tailBytes = 0;
    let granted = req.raw ? RAW_WINDOW : 0;
    let received = 0;
    const withinLimits = (bytes: number, tail: boolean): boolean => {
      if (req.raw) return (received += bytes) <= granted;
      if (tail) return (tailBytes += bytes) <= tailCap;
      return (headBytes += bytes) <= headCap;
    };

    let id = 0;
    const onAbort = (): void => {
      aborted = true;
      this.#channel.kill(id);
      armWatchdog(KILL_GRACE_MS);
    };
    const done = new Promise<{ exit: ExitFrame; aborted: boolean }>((resolve, reject) => {
      const finish = (): void => {
        ended = true;
        clearTimeout(watchdog);
        req.signal?.removeEventListener('abort', onAbort);
        wakePump();
      };
      id = this.#channel.start(
        {
          raw: req.raw,
          stdin: req.stdin !== undefined,
          timeoutMs: req.timeoutMs,
          maxOutputBytes: req.maxOutputBytes,
          credit: req.raw ? RAW_WINDOW : 0,
          cwd: req.cwd,
          argv: req.argv,
          env,
        },
        {
          onOut: (stream, data, tail) => {
            if (withinLimits(data.length, tail)) req.onOut(stream, data, tail);
            else this.#channel.close(new Error('the exec stream sent more output than allowed'));
          },
          onAck: (bytes) => {
            inflight -= bytes;
            wakePump();
          },
          onExit: (exit) => {
            finish();
            if (stdinError !== undefined && !aborted) {
              const why = stdinError instanceof Error ? stdinError.message : 'unknown error';
              reject(sandboxError(`reading the input failed: ${why}`));
            } else {
              resolve({ exit, aborted });
            }
          },
          onError: (err) => {
            finish();
            void this.#failure(err).then(reject);
          },
        },
      );
    });
    if (req.timeoutMs > 0 && req.timeoutMs <= U32_MAX - KILL_GRACE_MS)
      armWatchdog(req.timeoutMs + KILL_GRACE_MS);
    req.signal?.addEventListener('abort', onAbort, { once: true });

    if (req.stdin !== undefined) {
      const source = req.stdin;
      const pump = async (): Promise<void> => {
        const chunks: AsyncIterable<unknown> | Iterable<Buffer> = Buffer.isBuffer(source)
          ? [source]
          : source;
        for await (const chunk of chunks) {
          const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
          for (let off = 0; off < buf.length; off += STDIN_PIECE) {
            const piece = buf.subarray(off, off + STDIN_PIECE);
            while (!ended && inflight + piece.length > STDIN_WINDOW) {
              await new Promise<void>((resolve) => (wake = resolve));
            }
            if (ended) return;
            inflight += piece.length;
            this.#channel.stdin(id, piece);
          }
        }
        if (!ended) this.#channel.stdin(id, Buffer.alloc(0));
      };
      pump().catch((err: unknown) => {
        // The input broke off: the command must not see a truncated input as complete.
        stdinError = err;
        this.#channel.kill(id);
      });
    }
    return {
      done,
      credit: (bytes) => {
        granted += bytes;
        this.#channel.credit(id, bytes);
      },
      kill: () => {
        if (!ended) onAbort();
      },
    };
  }
}
