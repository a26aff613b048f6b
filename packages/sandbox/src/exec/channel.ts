import type { Duplex } from 'node:stream';
import {
  FrameParser,
  FrameType,
  OUT_TAIL,
  decodeExit,
  encodeFrame,
  encodeHeader,
  encodeStart,
  encodeU32,
  type ExitFrame,
  type StartFrame,
} from './protocol.js';

/** What a running command hears from the exec server. */
export interface CommandSink {
  onOut(stream: 'stdout' | 'stderr', data: Buffer, tail: boolean): void;
  onAck(bytes: number): void;
  onExit(exit: ExitFrame): void;
  /** The command cannot finish: the channel died, or the server refused it. */
  onError(err: Error): void;
}

/**
 * How the bytes read from a transport become the exec server's two outputs: its stdout (the
 * protocol's frames) and its stderr (diagnostics). A transport that carries stdout alone needs
 * none; Docker's attach stream interleaves both under headers of its own.
 */
export type StreamSplitter = (
  onData: (stream: 'stdout' | 'stderr', data: Buffer) => void,
) => (chunk: Buffer) => void;

const stdoutOnly: StreamSplitter = (onData) => (chunk) => onData('stdout', chunk);

/** Stdin payloads smaller than this are copied behind their header (one small write). */
const COPY_BELOW = 16 * 1024;

/** Bytes of diagnostics kept from the exec server's stderr. */
const STDERR_KEEP = 4096;

/**
 * One stream to a sandbox's exec server (any duplex: an engine's attach connection, a pod's
 * exec stream, a socket), multiplexing many commands. Each command
 * has its own id and sink, so outputs never mix. When the stream ends or breaks, every command
 * still running fails at once and the channel stays dead.
 */
export class ExecChannel {
  #socket: Duplex;
  #commands = new Map<number, CommandSink>();
  /** Requests that are not commands (ping, quiesce), answered by one frame with their id. */
  #requests = new Map<
    number,
    { resolve: (payload: Buffer) => void; reject: (err: Error) => void }
  >();
  #nextId = 1;
  #death: Error | undefined;
  #stderr = '';
  #onDeath: ((err: Error) => void) | undefined;

  constructor(socket: Duplex, split: StreamSplitter = stdoutOnly) {
    this.#socket = socket;
    const parser = new FrameParser((type, id, payload) => this.#onFrame(type, id, payload));
    const push = split((stream, data) => {
      if (stream === 'stderr') {
        this.#stderr = (this.#stderr + data.toString('utf8')).slice(-STDERR_KEEP);
      } else {
        parser.push(data);
      }
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        push(chunk);
      } catch (err) {
        this.#die(err instanceof Error ? err : new Error(String(err)));
      }
    });
    socket.on('end', () => this.#die(new Error('the exec server closed its stream')));
    socket.on('close', () => this.#die(new Error('the exec stream was closed')));
    socket.on('error', (err) => this.#die(err));
  }

  /** Why the channel died, or undefined while it lives. */
  get death(): Error | undefined {
    return this.#death;
  }

  /** The last few KiB the exec server wrote to stderr: its own diagnostics. */
  get serverStderr(): string {
    return this.#stderr;
  }

  /** Called once, when the channel dies (not when {@link close} is called). */
  set onDeath(fn: (err: Error) => void) {
    this.#onDeath = fn;
  }

  /** Starts a command; its sink hears everything until `onExit` or `onError`. */
  start(frame: StartFrame, sink: CommandSink): number {
    if (this.#death !== undefined) throw this.#death;
    const id = this.#allocId();
    this.#commands.set(id, sink);
    this.#socket.write(encodeStart(id, frame));
    return id;
  }

  /**
   * Stdin bytes for a command; an empty buffer closes its stdin. `data` is written as it is,
   * not copied: the caller must not change it afterwards.
   */
  stdin(id: number, data: Buffer): void {
    if (this.#death !== undefined || !this.#commands.has(id)) return;
    if (data.length < COPY_BELOW) {
      this.#socket.write(encodeFrame(FrameType.Stdin, id, data));
      return;
    }
    // Header and payload leave in one writev; copying megabytes behind a header costs more
    // (fresh pages, then garbage) than the transfer itself.
    this.#socket.cork();
    this.#socket.write(encodeHeader(FrameType.Stdin, id, data.length));
    this.#socket.write(data);
    this.#socket.uncork();
  }

  kill(id: number): void {
    if (this.#death === undefined && this.#commands.has(id))
      this.#socket.write(encodeFrame(FrameType.Kill, id));
  }

  credit(id: number, bytes: number): void {
    if (this.#death === undefined && this.#commands.has(id) && bytes > 0)
      this.#socket.write(encodeU32(FrameType.Credit, id, bytes));
  }

  /** Resolves when the server answers: it is up and the stream works end to end. */
  async ping(timeoutMs: number): Promise<void> {
    await this.#request(FrameType.Ping, timeoutMs, 'answer');
  }

  /**
   * Kills every process in the sandbox but the exec server and init: every running command's
   * tree and whatever commands left behind. Resolves with how many processes were killed and how
   * many would not go.
   */
  async quiesce(timeoutMs: number): Promise<{ killed: number; left: number }> {
    const payload = await this.#request(FrameType.Quiesce, timeoutMs, 'quiesce the sandbox');
    if (payload.length < 8) throw new Error('the exec server sent a short QUIESCED frame');
    return { killed: payload.readUInt32LE(0), left: payload.readUInt32LE(4) };
  }

  #request(type: number, timeoutMs: number, what: string): Promise<Buffer> {
    if (this.#death !== undefined) return Promise.reject(this.#death);
    const id = this.#allocId();
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#requests.delete(id);
        reject(new Error(`the exec server did not ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#requests.set(id, {
        resolve: (payload) => {
          clearTimeout(timer);
          resolve(payload);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.#socket.write(encodeFrame(type, id));
    });
  }

  /** Fails everything still running with `reason` and closes the stream. */
  close(reason: Error): void {
    this.#onDeath = undefined;
    this.#die(reason);
    this.#socket.destroy();
  }

  #allocId(): number {
    // Ids only need to be unique among running commands; wrap well inside u32.
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xfffffff0 ? 1 : this.#nextId + 1;
    return id;
  }

  #onFrame(type: number, id: number, payload: Buffer): void {
    switch (type) {
      case FrameType.Pong:
      case FrameType.Quiesced: {
        const request = this.#requests.get(id);
        this.#requests.delete(id);
        request?.resolve(payload);
        return;
      }
      case FrameType.Out: {
        const sink = this.#commands.get(id);
        if (sink === undefined || payload.length === 0) return;
        const tag = payload.readUInt8(0);
        sink.onOut(
          (tag & 0x7f) === 2 ? 'stderr' : 'stdout',
          payload.subarray(1),
          !!(tag & OUT_TAIL),
        );
        return;
      }
      case FrameType.Ack:
        this.#commands.get(id)?.onAck(payload.readUInt32LE(0));
        return;
      case FrameType.Exit: {
        const sink = this.#commands.get(id);
        this.#commands.delete(id);
        sink?.onExit(decodeExit(payload));
        return;
      }
      case FrameType.Error: {
        const sink = this.#commands.get(id);
        this.#commands.delete(id);
        sink?.onError(new Error(`the exec server refused the command: ${payload.toString()}`));
        return;
      }
      default:
        throw new Error(`the exec server sent an unknown frame type ${type}`);
    }
  }

  #die(err: Error): void {
    if (this.#death !== undefined) return;
    this.#death = err;
    const commands = [...this.#commands.values()];
    const requests = [...this.#requests.values()];
    this.#commands.clear();
    this.#requests.clear();
    for (const sink of commands) sink.onError(err);
    for (const request of requests) request.reject(err);
    const onDeath = this.#onDeath;
    this.#onDeath = undefined;
    onDeath?.(err);
    this.#socket.destroy();
  }
}
