import { join } from 'node:path';
import type { Config } from '@patchbay/core';
import { FsArtifactStore } from './fs-artifact-store.js';
import { S3ArtifactStore } from './s3-artifact-store.js';
import type { ArtifactStore } from './types.js';

/**
 * The artifact store the configuration names: an S3 bucket shared by every host, or the data
 * directory of a single machine.
 */
export function createArtifactStore(config: Config): ArtifactStore {
  return config.artifacts.s3
    ? new S3ArtifactStore(config.artifacts.s3)
    : new FsArtifactStore({ root: join(config.dataDir, 'artifacts') });
}
