import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as S3 from '@aws-sdk/client-s3';

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
  readonly #o: S3SnapshotsOptions;
  /** The SDK is loaded on first use: a worker without a bucket never pays for it. */
  #sdk: Promise<{ s3: S3.S3Client; sdk: typeof S3 }> | undefined;

  constructor(options: S3SnapshotsOptions) {
    this.#o = options;
  }

  #client(): Promise<{ s3: S3.S3Client; sdk: typeof S3 }> {
    return (this.#sdk ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      s3: new sdk.S3Client({
        region: this.#o.region,
        // Plain uploads: the SDK's default streaming checksums (aws-chunked trailers) are not
        // understood by every S3-compatible server; the cache checks its own SHA-256 anyway.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        ...(this.#o.endpoint ? { endpoint: this.#o.endpoint, forcePathStyle: true } : {}),
        ...(this.#o.credentials ? { credentials: this.#o.credentials } : {}),
      }),
    })));
  }

  async upload(name: string, path: string): Promise<void> {
    const { size } = await stat(path);
    const { s3, sdk } = await this.#client();
    await s3.send(
      new sdk.PutObjectCommand({
        Bucket: this.#o.bucket,
        Key: this.#key(name),
        Body: createReadStream(path),
        ContentLength: size,
      }),
    );
  }

  async download(name: string, path: string): Promise<boolean> {
    const { s3, sdk } = await this.#client();
    let body: Readable;
    try {
      const got = await s3.send(
        new sdk.GetObjectCommand({ Bucket: this.#o.bucket, Key: this.#key(name) }),
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
