import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { LABELS } from './container.js';
import { createDockerClient } from './client.js';
import type { DockerSandboxProviderOptions } from './options.js';
import { DockerSandboxProvider } from './provider.js';

/**
 * For tests and benchmarks anywhere in the repository that need real sandboxes: a provider of
 * their own namespace, and the removal of whatever it left.
 */

/** The image every sandbox test runs; `npm test` builds it (infra/local/images.sh). */
export const TEST_IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';

export const docker: Docker = createDockerClient(process.env.DOCKER_HOST);

/**
 * A provider of its own namespace, so that its reaper never sees another test's containers
 * (test files run in parallel against one engine). No pool and no periodic reaper unless asked.
 */
export function testProvider(
  options: Partial<DockerSandboxProviderOptions> = {},
): DockerSandboxProvider {
  return new DockerSandboxProvider({
    docker,
    namespace: `test-${randomUUID().slice(0, 8)}`,
    workerId: `test-worker-${randomUUID().slice(0, 8)}`,
    warmPoolSize: 0,
    reaperIntervalMs: 0,
    ...options,
  });
}

/** Removes whatever a test left in `namespace`, whatever state it is in. */
export async function removeNamespace(namespace: string): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.namespace}=${namespace}`] },
  });
  await Promise.allSettled(
    containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })),
  );
}
