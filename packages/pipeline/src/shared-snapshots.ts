import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type S3Connection, type S3Location, connectS3, isMissingObject } from '@patchbay/store';

/** Where workers share snapshots, so that one host's setup serves another's tasks. */
export interface SharedSnapshots {
  upload(name: string, path: string): Promise<void>;
  /** Writes the object to `path`; false when there is none. */
  download(name: string, path: string): Promise<boolean>;
}

/** Snapshots in an S3 bucket (AWS S3, or any S3-compatible store: MinIO, Ceph, R2, …). */
export class S3Snapshots implements SharedSnapshots {
  readonly #connect: () => Promise<S3Connection>;
  readonly #bucket: string;

  constructor(location: S3Location) {
    this.#connect = connectS3(location);
    this.#bucket = location.bucket;
  }

  async upload(name: string, path: string): Promise<void> {
    const { size } = await stat(path);
    const { s3, sdk, key } = await this.#connect();
    await s3.send(
      new sdk.PutObjectCommand({
        Bucket: this.#bucket,
        Key: key(name),
        Body: createReadStream(path),
        ContentLength: size,
      }),
    );
  }

  async download(name: string, path: string): Promise<boolean> {
    const { s3, sdk, key } = await this.#connect();
    let body: Readable;
    try {
      const got = await s3.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key: key(name) }));
      body = got.Body as Readable;
    } catch (err) {
      if (isMissingObject(err)) return false;
      throw err;
    }
    await pipeline(body, createWriteStream(path));
    return true;
  }
}
