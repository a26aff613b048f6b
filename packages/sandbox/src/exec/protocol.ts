/**
 * The wire protocol of the in-container exec server (docker/sandbox/execd/pb-execd.c, which
 * documents it in full). Frame: u32le payload length, u8 type, u32le command id, payload.
 */

export const FrameType = {
  // worker -> execd
  Ping: 1,
  Start: 2,
  Stdin: 3,
  Kill: 4,
  Credit: 5,
  Quiesce: 6,
  // execd -> worker
  Pong: 129,
  Out: 130,
  Ack: 131,
  Exit: 132,
  Error: 133,
  Quiesced: 134,
} as const;

const START_RAW = 1;
const START_STDIN = 2;

const EXIT_TIMED_OUT = 1;
const EXIT_KILLED = 2;
const EXIT_OOM = 4;

/** Stream byte of an OUT frame: 1 stdout, 2 stderr, with this bit set for the tail part. */
export const OUT_TAIL = 0x80;

const HEADER = 9;
/** Largest frame the worker accepts from execd; execd never sends more than 64 KiB of data. */
const MAX_FRAME = 1 << 20;

export interface StartFrame {
  raw: boolean;
  stdin: boolean;
  /** 0: none. */
  timeoutMs: number;
  maxOutputBytes: number;
  /** Output bytes a raw command may send before it needs more credit. */
  credit: number;
  cwd: string;
  argv: readonly string[];
  /** `K=V` entries added to the server's environment. */
  env: readonly string[];
}

export interface ExitFrame {
  exitCode: number | null;
  signal: number | null;
  droppedBytes: number;
  durationMs: number;
  timedOut: boolean;
  killed: boolean;
  oom: boolean;
}

export function encodeFrame(type: number, id: number, payload?: Buffer): Buffer {
  const len = payload?.length ?? 0;
  const out = Buffer.allocUnsafe(HEADER + len);
  out.writeUInt32LE(len, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32LE(id, 5);
  if (payload !== undefined) payload.copy(out, HEADER);
  return out;
}

/**
 * The header alone of a frame whose payload is written separately: large payloads (stdin) go to
 * the socket as they are, not copied behind a header.
 */
export function encodeHeader(type: number, id: number, payloadBytes: number): Buffer {
  const out = Buffer.allocUnsafe(HEADER);
  out.writeUInt32LE(payloadBytes, 0);
  out.writeUInt8(type, 4);
  out.writeUInt32LE(id, 5);
  return out;
}

export function encodeStart(id: number, s: StartFrame): Buffer {
  const fixed = Buffer.allocUnsafe(24);
  fixed.writeUInt32LE((s.raw ? START_RAW : 0) | (s.stdin ? START_STDIN : 0), 0);
  fixed.writeUInt32LE(s.timeoutMs, 4);
  fixed.writeUInt32LE(s.maxOutputBytes, 8);
  fixed.writeUInt32LE(s.credit, 12);
  fixed.writeUInt32LE(s.argv.length, 16);
  fixed.writeUInt32LE(s.env.length, 20);
  const strings = [s.cwd, ...s.argv, ...s.env].map((v) => Buffer.from(`${v}\0`, 'utf8'));
  return encodeFrame(FrameType.Start, id, Buffer.concat([fixed, ...strings]));
}

export function encodeU32(type: number, id: number, value: number): Buffer {
  const p = Buffer.allocUnsafe(4);
  p.writeUInt32LE(value, 0);
  return encodeFrame(type, id, p);
}

export function decodeExit(p: Buffer): ExitFrame {
  const code = p.readInt32LE(0);
  const signal = p.readInt32LE(4);
  const dropped = p.readUInt32LE(8) + p.readUInt32LE(12) * 2 ** 32;
  const flags = p.readUInt32LE(20);
  return {
    exitCode: code >= 0 ? code : null,
    signal: signal > 0 ? signal : null,
    droppedBytes: dropped,
    durationMs: p.readUInt32LE(16),
    timedOut: (flags & EXIT_TIMED_OUT) !== 0,
    killed: (flags & EXIT_KILLED) !== 0,
    oom: (flags & EXIT_OOM) !== 0,
  };
}

/**
 * Cuts a byte stream into frames. Data is copied only when a frame spans chunks; payloads
 * handed out may share memory with the input chunk and must be consumed (or copied) at once.
 */
export class FrameParser {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly onFrame: (type: number, id: number, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let buf = chunk;
    if (this.pendingBytes > 0) {
      this.pending.push(chunk);
      buf = Buffer.concat(this.pending, this.pendingBytes + chunk.length);
      this.pending = [];
      this.pendingBytes = 0;
    }
    let pos = 0;
    while (buf.length - pos >= HEADER) {
      const len = buf.readUInt32LE(pos);
      if (len > MAX_FRAME) throw new Error(`exec server sent a frame of ${len} bytes`);
      if (buf.length - pos < HEADER + len) break;
      const type = buf.readUInt8(pos + 4);
      const id = buf.readUInt32LE(pos + 5);
      this.onFrame(type, id, buf.subarray(pos + HEADER, pos + HEADER + len));
      pos += HEADER + len;
    }
    if (pos < buf.length) {
      const rest = buf.subarray(pos);
      this.pending.push(rest);
      this.pendingBytes = rest.length;
    }
  }
}
