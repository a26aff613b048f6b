import type Docker from 'dockerode';
import { LABELS } from './container.js';
import { docker } from './testing.js';

export { TEST_IMAGE, docker, removeNamespace, testProvider } from './testing.js';

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
