import { describe, expect, it } from 'vitest';
import { splitDockerStream } from './demux.js';

function dockerFrame(stream: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(data.length, 4);
  return Buffer.concat([header, data]);
}

describe('splitDockerStream', () => {
  it('splits stdout from stderr however the stream is cut', () => {
    const stream = Buffer.concat([
      dockerFrame(1, Buffer.from('out-1')),
      dockerFrame(2, Buffer.from('err')),
      dockerFrame(1, Buffer.from('out-2')),
    ]);
    const cuts: Buffer[][] = [[...stream].map((b) => Buffer.from([b]))];
    for (let i = 0; i <= stream.length; i++) cuts.push([stream.subarray(0, i), stream.subarray(i)]);
    for (const pieces of cuts) {
      const got = { stdout: '', stderr: '' };
      const push = splitDockerStream((s, data) => (got[s] += data.toString()));
      for (const p of pieces) push(p);
      expect(got).toEqual({ stdout: 'out-1out-2', stderr: 'err' });
    }
  });
});
