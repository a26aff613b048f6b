import { StartupError, loadConfig, redactConfig, runMain } from '@patchbay/core';
import { createRedis } from '@patchbay/queue';
import { createDockerClient } from '@patchbay/sandbox';
import { buildApp } from './app.js';

runMain('patchbay-api', async () => {
  const config = loadConfig();
  const redis = createRedis({ url: config.redis.url, name: 'patchbay-api', failFast: true });
  const docker = createDockerClient(config.docker.host);
  const app = buildApp({
    logger: { level: config.log.level },
    pingRedis: () => redis.ping(),
    pingDocker: () => docker.ping(),
  });
  app.log.debug({ config: redactConfig(config) }, 'configuration');

  let closing = false;
  const close = (signal: string): void => {
    if (closing) return;
    closing = true;
    app.log.info({ signal }, 'shutting down');
    void app.close().finally(() => redis.disconnect());
  };
  process.once('SIGINT', () => close('SIGINT'));
  process.once('SIGTERM', () => close('SIGTERM'));

  try {
    await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    redis.disconnect();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(
        `port ${config.api.port} on ${config.api.host} is already in use (is Patchbay already running?); stop it or set PORT`,
      );
    }
    throw err;
  }
});
