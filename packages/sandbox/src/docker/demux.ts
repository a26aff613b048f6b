import type { StreamSplitter } from '../exec/channel.js';

/**
 * Splits Docker's multiplexed attach stream (8-byte header: stream type, 3 zero bytes, u32be
 * length) into stdout and stderr payloads.
 */
class DockerDemuxer {
  private header = Buffer.alloc(8);
  private headerFill = 0;
  private remaining = 0;
  private stream = 1;

  constructor(private readonly onData: (stream: number, data: Buffer) => void) {}

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      if (this.remaining === 0) {
        const k = Math.min(8 - this.headerFill, chunk.length - pos);
        chunk.copy(this.header, this.headerFill, pos, pos + k);
        this.headerFill += k;
        pos += k;
        if (this.headerFill < 8) return;
        this.headerFill = 0;
        this.stream = this.header.readUInt8(0);
        this.remaining = this.header.readUInt32BE(4);
        continue;
      }
      const k = Math.min(this.remaining, chunk.length - pos);
      this.onData(this.stream, chunk.subarray(pos, pos + k));
      this.remaining -= k;
      pos += k;
    }
  }
}

/** The exec channel's view of an attach connection: the server's stdout and stderr apart. */
export const splitDockerStream: StreamSplitter = (onData) => {
  const demux = new DockerDemuxer((stream, data) =>
    onData(stream === 2 ? 'stderr' : 'stdout', data),
  );
  return (chunk) => demux.push(chunk);
};
