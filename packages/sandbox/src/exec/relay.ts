import type { Duplex } from 'node:stream';
import { PassThrough } from 'node:stream';
import { FrameParser, encodeFrame } from './protocol.js';
import type { SandboxService } from '../types.js';

/**
 * The worker's end of `pb-execd relay` (docker/sandbox/execd/relay.c): each connection a
 * sandbox opens to the relay's loopback port arrives here as frames, and is joined to a new
 * connection to the service. Frames use the exec protocol's header.
 */
const RelayFrame = { Ready: 1, Open: 2, Data: 3, Eof: 4, Close: 5 } as const;

/** Data sent to the relay per frame: the relay reads in pieces of this size too. */
const PIECE = 64 * 1024;
/** Bytes queued toward the relay before the service's connections are paused. */
const STDIN_HIGH_WATER = 1024 * 1024;

interface Joined {
  socket: Duplex;
  /** Output credit held back until the service's connection drains. */
  held: number;
  closed: boolean;
}

/**
 * Joins relay connections to a service. `input` is the relay's stdin (feed it to the command);
 * call {@link push} with the relay's stdout, and grant the relay `credit` as it is returned.
 */
export class RelayEnd {
  /** The relay's stdin: frames toward the sandbox. */
  readonly input = new PassThrough({ highWaterMark: STDIN_HIGH_WATER });
  /** Resolves with the loopback port the relay listens on inside the sandbox. */
  readonly ready: Promise<number>;
  readonly #service: SandboxService;
  readonly #credit: (bytes: number) => void;
  readonly #parser: FrameParser;
  readonly #joined = new Map<number, Joined>();
  #onReady!: (port: number) => void;
  #closed = false;

  constructor(service: SandboxService, credit: (bytes: number) => void) {
    this.#service = service;
    this.#credit = credit;
    this.ready = new Promise((resolve) => (this.#onReady = resolve));
    this.#parser = new FrameParser((type, id, payload) => this.#onFrame(type, id, payload));
    // The relay's stdin filled up: stop reading from the service until it drains.
    this.input.on('drain', () => {
      for (const j of this.#joined.values()) j.socket.resume();
    });
  }

  /** Bytes the relay wrote to its stdout. */
  push(chunk: Buffer): void {
    this.#parser.push(chunk);
  }

  /** Ends every joined connection and the relay's input (the relay then exits). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const j of this.#joined.values()) j.socket.destroy();
    this.#joined.clear();
    this.input.end();
  }

  #send(type: number, id: number, payload?: Buffer): boolean {
    if (this.#closed) return true;
    return this.input.write(encodeFrame(type, id, payload));
  }

  #onFrame(type: number, id: number, payload: Buffer): void {
    const size = payload.length + 9;
    switch (type) {
      case RelayFrame.Ready:
        this.#onReady(payload.readUInt32LE(0));
        break;
      case RelayFrame.Open:
        this.#open(id);
        break;
      case RelayFrame.Data: {
        const j = this.#joined.get(id);
        if (j === undefined || j.closed) break;
        if (!j.socket.write(Buffer.from(payload))) {
          // The service reads slowly: the relay gets this credit back once it has drained.
          j.held += size;
          return;
        }
        break;
      }
      case RelayFrame.Eof:
        this.#joined.get(id)?.socket.end();
        break;
      case RelayFrame.Close: {
        const j = this.#joined.get(id);
        this.#joined.delete(id);
        if (j !== undefined) {
          j.closed = true;
          j.socket.destroy();
        }
        break;
      }
      default:
        throw new Error(`the relay sent an unknown frame type ${type}`);
    }
    this.#credit(size);
  }

  #open(id: number): void {
    let socket: Duplex;
    try {
      socket = this.#service.connect();
    } catch {
      this.#send(RelayFrame.Close, id);
      return;
    }
    const j: Joined = { socket, held: 0, closed: false };
    this.#joined.set(id, j);
    socket.on('data', (chunk: Buffer) => {
      for (let off = 0; off < chunk.length; off += PIECE) {
        if (!this.#send(RelayFrame.Data, id, chunk.subarray(off, off + PIECE))) socket.pause();
      }
    });
    socket.on('drain', () => {
      const held = j.held;
      j.held = 0;
      if (held > 0) this.#credit(held);
    });
    socket.on('end', () => {
      if (!j.closed) this.#send(RelayFrame.Eof, id);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      const held = j.held;
      j.held = 0;
      if (held > 0) this.#credit(held);
      if (j.closed) return;
      j.closed = true;
      this.#joined.delete(id);
      this.#send(RelayFrame.Close, id);
    });
  }
}
