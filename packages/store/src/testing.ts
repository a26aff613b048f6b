import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { S3Location } from './s3.js';

/** s3rver's surface as used here (the package ships no types). */
interface S3rver {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
}

export interface S3TestServer {
  /** e.g. `http://127.0.0.1:40123` */
  endpoint: string;
  /** A location in `bucket` on this server, with its test credentials. */
  location(bucket: string, prefix: string): S3Location;
  close(): Promise<void>;
}

/**
 * s3rver, an S3-compatible server in Node, with the given buckets, its objects in a temporary
 * directory. Listens on `address` (127.0.0.1 unless a test names another of its own addresses).
 */
export async function startS3Server(options: {
  buckets: string[];
  address?: string;
  port?: number;
}): Promise<S3TestServer> {
  const S3rverClass = createRequire(import.meta.url)('s3rver') as new (o: object) => S3rver;
  const directory = await mkdtemp(join(tmpdir(), 'patchbay-s3rver-'));
  const server = new S3rverClass({
    address: options.address ?? '127.0.0.1',
    port: options.port ?? 0,
    silent: true,
    directory,
    configureBuckets: options.buckets.map((name) => ({ name })),
  });
  const { address, port } = await server.run();
  const endpoint = `http://${address}:${port}`;
  return {
    endpoint,
    location: (bucket, prefix) => ({
      bucket,
      prefix,
      region: 'us-east-1',
      endpoint,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    }),
    close: async () => {
      await server.close();
      await rm(directory, { recursive: true, force: true });
    },
  };
}
