import { describe, expect, it } from 'vitest';
import {
  FrameParser,
  FrameType,
  decodeExit,
  encodeFrame,
  encodeHeader,
  encodeStart,
} from './protocol.js';

/** Every way of cutting `bytes` into two pieces, and into single bytes. */
function cuts(bytes: Buffer): Buffer[][] {
  const out: Buffer[][] = [[...bytes].map((b) => Buffer.from([b]))];
  for (let i = 0; i <= bytes.length; i++) out.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return out;
}

describe('encodeHeader', () => {
  it('is the head of the frame encodeFrame makes, for a payload written after it', () => {
    const payload = Buffer.from('some stdin bytes');
    expect(Buffer.concat([encodeHeader(FrameType.Stdin, 42, payload.length), payload])).toEqual(
      encodeFrame(FrameType.Stdin, 42, payload),
    );
  });
});

describe('FrameParser', () => {
  it('reassembles frames however the stream is cut', () => {
    const frames = Buffer.concat([
      encodeFrame(FrameType.Pong, 7),
      encodeFrame(FrameType.Out, 0xfffffff0, Buffer.from([1, 0, 255, 10])),
      encodeFrame(FrameType.Ack, 3, Buffer.from([1, 0, 0, 0])),
    ]);
    for (const pieces of cuts(frames)) {
      const seen: [number, number, string][] = [];
      const parser = new FrameParser((type, id, payload) =>
        seen.push([type, id, payload.toString('hex')]),
      );
      for (const p of pieces) parser.push(p);
      expect(seen).toEqual([
        [FrameType.Pong, 7, ''],
        [FrameType.Out, 0xfffffff0, '0100ff0a'],
        [FrameType.Ack, 3, '01000000'],
      ]);
    }
  });

  it('refuses an oversized frame instead of buffering it', () => {
    const header = Buffer.alloc(9);
    header.writeUInt32LE(64 * 1024 * 1024, 0);
    expect(() => new FrameParser(() => {}).push(header)).toThrow(/frame of/);
  });
});

describe('frames', () => {
  it('encodes a start frame as the exec server reads it', () => {
    const frame = encodeStart(5, {
      raw: true,
      stdin: true,
      timeoutMs: 1000,
      maxOutputBytes: 4096,
      credit: 77,
      cwd: '/w',
      argv: ['echo', 'é'],
      env: ['A=1'],
    });
    expect(frame.readUInt32LE(0)).toBe(frame.length - 9);
    expect(frame.readUInt8(4)).toBe(FrameType.Start);
    expect(frame.readUInt32LE(5)).toBe(5);
    const p = frame.subarray(9);
    expect([0, 4, 8, 12, 16, 20].map((o) => p.readUInt32LE(o))).toEqual([3, 1000, 4096, 77, 2, 1]);
    expect(p.subarray(24).toString()).toBe('/w\0echo\0é\0A=1\0');
  });

  it('decodes exit frames: code or signal, 64-bit dropped count, flags', () => {
    const p = Buffer.alloc(24);
    p.writeInt32LE(-1, 0);
    p.writeInt32LE(9, 4);
    p.writeUInt32LE(5, 8);
    p.writeUInt32LE(1, 12);
    p.writeUInt32LE(1234, 16);
    p.writeUInt32LE(1 | 4, 20);
    expect(decodeExit(p)).toEqual({
      exitCode: null,
      signal: 9,
      droppedBytes: 2 ** 32 + 5,
      durationMs: 1234,
      timedOut: true,
      killed: false,
      oom: true,
    });
  });
});
