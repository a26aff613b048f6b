import { loadConfig, redactConfig, runMain } from '@patchbay/core';
import { startApi } from './server.js';

runMain('patchbay-api', async () => {
  const config = loadConfig();
  const server = await startApi(config);
  server.app.log.debug({ config: redactConfig(config) }, 'configuration');
  const stop = (signal: string): void => {
    server.app.log.info({ signal }, 'shutting down');
    void server.close();
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
});
