import type { Config, Logger } from '@patchbay/core';
import {
  DockerSandboxProvider,
  createDockerClient,
  sandboxOptionsFromConfig,
  type SandboxOwner,
} from './docker/index.js';
import type { SandboxProvider } from './types.js';

/**
 * The one place a provider is chosen (`PATCHBAY_SANDBOX_PROVIDER`): another kind of sandbox
 * (Kubernetes pods, microVMs) is a folder beside `docker/` extending the exec half in `exec/`,
 * a case here and a value of that variable.
 */

export interface ProviderDeps {
  logger?: Logger;
  /**
   * Whether a sandbox another worker left is still in use, so its reaper must spare it (a live
   * worker holds its task, or still beats for a pooled one).
   */
  isInUse?: (owner: SandboxOwner) => Promise<boolean>;
}

type SandboxConfig = Pick<Config, 'sandbox' | 'worker' | 'redis' | 'docker'>;

export function createSandboxProvider(
  config: SandboxConfig,
  deps: ProviderDeps = {},
): SandboxProvider {
  switch (config.sandbox.provider) {
    case 'docker':
      return new DockerSandboxProvider({
        docker: createDockerClient(config.docker),
        endpoint: config.docker,
        ...sandboxOptionsFromConfig(config),
        ...(deps.logger ? { logger: deps.logger } : {}),
        ...(deps.isInUse ? { isInUse: deps.isInUse } : {}),
      });
  }
}

/** Resolves when the provider's backend answers (for readiness checks); rejects otherwise. */
export function sandboxHealthCheck(config: SandboxConfig): () => Promise<unknown> {
  switch (config.sandbox.provider) {
    case 'docker': {
      const docker = createDockerClient(config.docker);
      return () => docker.ping();
    }
  }
}
