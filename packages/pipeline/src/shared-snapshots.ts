import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

/** Where workers share snapshots, so that one host's setup serves another's tasks. */
export interface SharedSnapshots {
  upload(name: string, path: string): Promise<void>;
  /** Writes the object to `path`; false when there is none. */
  download(name: string, path: string): Promise<boolean>;
}

export interface S3SnapshotsOptions {
  bucket: string;
  /** Key prefix of every object. */
  prefix: string;
  region: string;
  /** An S3-compatible server's URL (path-style requests); AWS itself when absent. */
  endpoint?: string | undefined;
  /** @default the SDK's chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** Snapshots in an S3 bucket (AWS S3, or any S3-compatible store: MinIO, Ceph, R2, …). */
export class S3Snapshots implements SharedSnapshots {
  readonly #s3: S3Client;
  readonly #o: S3SnapshotsOptions;

  constructor(options: S3SnapshotsOptions) {
    this.#o = options;
    this.#s3 = new S3Client({
      region: options.region,
      // Plain uploads: the SDK's default streaming checksums (aws-chunked trailers) are not
      // understood by every S3-compatible server; the cache checks its own SHA-256 anyway.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      ...(options.endpoint ? { endpoint: options.endpoint, forcePathStyle: true } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
    });
  }

  async upload(name: string, path: string): Promise<void> {
    const { size } = await stat(path);
    await this.#s3.send(
      new PutObjectCommand({
        Bucket: this.#o.bucket,
        Key: this.#key(name),
        Body: createReadStream(path),
        ContentLength: size,
      }),
    );
  }

  async download(name: string, path: string): Promise<boolean> {
    let body: Readable;
    try {
      const got = await this.#s3.send(
        new GetObjectCommand({ Bucket: this.#o.bucket, Key: this.#key(name) }),
      );
      body = got.Body as Readable;
    } catch (err) {
      if ((err as { name?: string }).name === 'NoSuchKey') return false;
      throw err;
    }
    await pipeline(body, createWriteStream(path));
    return true;
  }

  #key(name: string): string {
    return `${this.#o.prefix.replace(/\/+$/, '')}/${name}`;
  }
}
