import { loadConfig, redactConfig, runMain } from '@patchbay/core';
import { createRedis } from '@patchbay/queue';
import { createDockerClient } from '@patchbay/sandbox';
import { pino } from 'pino';

runMain('patchbay-worker', async () => {
  const config = loadConfig();
  const log = pino({
    level: config.log.level,
    base: { component: 'worker', workerId: config.worker.id },
  });
  log.debug({ config: redactConfig(config) }, 'configuration');
  const redis = createRedis({ url: config.redis.url, name: `patchbay-worker:${config.worker.id}` });
  const docker = createDockerClient(config.docker.host);
  await Promise.all([redis.ping(), docker.ping()]);
  log.info('worker ready');

  await new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  log.info('shutting down');
  redis.disconnect();
});
