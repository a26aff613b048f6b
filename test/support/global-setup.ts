import { loadConfig } from '@patchbay/core';
import { createRedis } from '@patchbay/queue';
import { createDockerClient } from '@patchbay/sandbox';

/** Fails the whole run, with what to do about it, when Redis or the Docker engine is missing. */
export default async function globalSetup(): Promise<void> {
  const config = loadConfig();
  const redis = createRedis({ url: config.redis.url });
  const problems: string[] = [];
  try {
    await Promise.race([
      redis.ping(),
      new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 5 s')), 5000)),
    ]);
  } catch (err) {
    problems.push(`Redis at ${config.redis.url} does not answer (${(err as Error).message})`);
  } finally {
    redis.disconnect();
  }
  try {
    const docker = createDockerClient(config.docker);
    const info = (await docker.info()) as { Runtimes?: Record<string, unknown> };
    const runtime = config.sandbox.runtime;
    if (info.Runtimes?.[runtime] === undefined)
      problems.push(
        `the Docker engine has no runtime ${runtime} (PATCHBAY_SANDBOX_RUNTIME); bash infra/local/runsc.sh registers gVisor's`,
      );
  } catch (err) {
    problems.push(`the Docker engine does not answer (${(err as Error).message})`);
  }
  if (problems.length > 0) {
    throw new Error(
      `The test suite needs a real Redis and Docker engine: ${problems.join('; ')}. ` +
        'Run `npm test`, which provisions them (infra/local/provision.sh).',
    );
  }
}
