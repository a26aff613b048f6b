import type * as S3 from '@aws-sdk/client-s3';

/** A place in an S3 bucket: AWS S3, or any S3-compatible server (MinIO, Ceph, R2, …). */
export interface S3Location {
  bucket: string;
  /** Key prefix of every object, without a trailing slash. */
  prefix: string;
  region: string;
  /** An S3-compatible server's URL (path-style requests); AWS itself when absent. */
  endpoint?: string | undefined;
  /** @default the SDK's chain: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, profiles, roles */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
}

export interface S3Connection {
  s3: S3.S3Client;
  sdk: typeof S3;
  /** `prefix/…parts`, the object key of a name under the location's prefix. */
  key: (...parts: string[]) => string;
}

/**
 * One client for a location, loaded on first use: a process that never touches the bucket never
 * pays for the SDK. Every S3 user in Patchbay (artifacts, shared setup snapshots) comes here, so
 * they speak to a server the same way.
 */
export function connectS3(location: S3Location): () => Promise<S3Connection> {
  let connection: Promise<S3Connection> | undefined;
  const prefix = location.prefix.replace(/\/+$/, '');
  return () =>
    (connection ??= import('@aws-sdk/client-s3').then((sdk) => ({
      sdk,
      s3: new sdk.S3Client({
        region: location.region,
        // Plain requests: the SDK's default streaming checksums (aws-chunked trailers) are not
        // understood by every S3-compatible server; our callers check what they must themselves.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
        // A store that is down should fail a task's step in seconds, not hang it.
        maxAttempts: 3,
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
        ...(location.endpoint ? { endpoint: location.endpoint, forcePathStyle: true } : {}),
        ...(location.credentials ? { credentials: location.credentials } : {}),
      }),
      key: (...parts: string[]) => [prefix, ...parts].join('/'),
    })));
}

/** True for the SDK's answer to a missing object (GET: NoSuchKey, HEAD: NotFound). */
export function isMissingObject(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } } | undefined;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}
