import { Readable } from 'node:stream';
import { PatchbayError, isPatchbayError } from '@patchbay/core';
import { segment } from './artifact-names.js';
import { type S3Connection, type S3Location, connectS3, isMissingObject } from './s3.js';
import type { ArtifactStore } from './types.js';

/** DeleteObjects takes at most this many keys a request. */
const DELETE_BATCH = 1000;

/**
 * Artifacts in an S3 bucket under `<prefix>/<taskId>/<name>`, so that the API and workers on any
 * host share them without a shared disk. S3 makes an object visible only once it is whole: a
 * buffer goes up in one PUT, a stream as a multipart upload that is aborted on failure. Reads
 * stream the object's body as it arrives. Any failure of the store itself is `storage_unavailable`
 * (retryable), so a task meeting an outage is retried or fails with that code, never with a wrong
 * or partial artifact.
 */
export class S3ArtifactStore implements ArtifactStore {
  readonly #connect: () => Promise<S3Connection>;
  readonly #bucket: string;
  readonly #where: string;

  constructor(location: S3Location) {
    this.#connect = connectS3(location);
    this.#bucket = location.bucket;
    this.#where = `s3://${location.bucket}/${location.prefix}${location.endpoint ? ` at ${location.endpoint}` : ''}`;
  }

  async put(taskId: string, name: string, body: Buffer | string | Readable): Promise<void> {
    const { s3, sdk, key } = await this.#connect();
    const Key = key(segment(taskId, 'taskId'), segment(name, 'name'));
    try {
      if (body instanceof Readable) {
        const { Upload } = await import('@aws-sdk/lib-storage');
        await new Upload({ client: s3, params: { Bucket: this.#bucket, Key, Body: body } }).done();
      } else {
        const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
        await s3.send(
          new sdk.PutObjectCommand({
            Bucket: this.#bucket,
            Key,
            Body: bytes,
            ContentLength: bytes.length,
          }),
        );
      }
    } catch (err) {
      // The source's own failure is the caller's, not the store's.
      if (body instanceof Readable && body.errored) throw body.errored;
      throw this.#failed(`store ${name}`, err);
    }
  }

  async get(taskId: string, name: string): Promise<{ body: Readable; size: number } | null> {
    const { s3, sdk, key } = await this.#connect();
    const Key = key(segment(taskId, 'taskId'), segment(name, 'name'));
    try {
      const got = await s3.send(new sdk.GetObjectCommand({ Bucket: this.#bucket, Key }));
      return { body: got.Body as Readable, size: got.ContentLength ?? 0 };
    } catch (err) {
      if (isMissingObject(err)) return null;
      throw this.#failed(`read ${name}`, err);
    }
  }

  async remove(taskId: string): Promise<void> {
    const { s3, sdk, key } = await this.#connect();
    const Prefix = `${key(segment(taskId, 'taskId'))}/`;
    try {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new sdk.ListObjectsV2Command({
            Bucket: this.#bucket,
            Prefix,
            MaxKeys: DELETE_BATCH,
            ContinuationToken: token,
          }),
        );
        const keys = (page.Contents ?? []).flatMap((o) => (o.Key ? [{ Key: o.Key }] : []));
        if (keys.length > 0) {
          await s3.send(
            new sdk.DeleteObjectsCommand({
              Bucket: this.#bucket,
              Delete: { Objects: keys, Quiet: true },
            }),
          );
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token !== undefined);
    } catch (err) {
      throw this.#failed(`remove the artifacts of task ${taskId}`, err);
    }
  }

  #failed(what: string, err: unknown): Error {
    if (isPatchbayError(err)) return err;
    const reason = err instanceof Error ? err.message || err.name : String(err);
    return new PatchbayError(
      'storage_unavailable',
      `the artifact store ${this.#where} could not ${what}: ${reason}`,
      { cause: err, retryable: true },
    );
  }
}
