import { randomUUID } from 'node:crypto';
import type Docker from 'dockerode';
import { loadConfig } from '@patchbay/core';
import { LABELS, isGvisor } from './container.js';
import { createDockerClient } from './client.js';
import type { DockerSandboxProviderOptions } from './options.js';
import { DockerSandboxProvider } from './provider.js';

/**
 * Real sandboxes for tests: this package's own, and (through `@patchbay/sandbox/testing`) tests
 * and benchmarks anywhere in the repository: a provider of their own namespace, and the removal
 * of whatever it left.
 */

/** The engine, image and runtime the suites use, read as a worker reads them. */
const config = loadConfig();

/** The image every sandbox test runs; `npm test` builds it (infra/local/images.sh). */
export const TEST_IMAGE = config.sandbox.image;

/** The engine of DOCKER_HOST (TLS included), wherever it is. */
export const docker: Docker = createDockerClient(config.docker);

/** The OCI runtime the suites run sandboxes under (`npm test` runs them under runc and runsc). */
export const TEST_RUNTIME = config.sandbox.runtime;

/** Whether that runtime is gVisor, where some behaviours differ (and the tests say how). */
export const TEST_GVISOR = isGvisor(TEST_RUNTIME);

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
    runtime: TEST_RUNTIME,
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

export async function namespaceContainers(namespace: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.namespace}=${namespace}`] },
  });
}

export async function containerExists(id: string): Promise<boolean> {
  try {
    await docker.getContainer(id).inspect();
    return true;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return false;
    throw err;
  }
}

/**
 * Removes stopped containers that crashed test runs left in `test-` namespaces (no reaper ever
 * looks there: each run's namespace is new). A run that dies stops its containers, but cannot
 * remove them.
 */
export async function sweepStaleTestContainers(olderThanMs = 10 * 60_000): Promise<void> {
  const containers = await docker.listContainers({
    all: true,
    filters: { label: [`${LABELS.managed}=true`], status: ['exited', 'created', 'dead'] },
  });
  const stale = containers.filter(
    (c) =>
      (c.Labels[LABELS.namespace] ?? '').startsWith('test-') &&
      Date.now() - c.Created * 1000 > olderThanMs,
  );
  await Promise.allSettled(
    stale.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true })),
  );
}
