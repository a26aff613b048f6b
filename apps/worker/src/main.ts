import { loadConfig, redactConfig, runMain } from '@patchbay/core';
import { pino } from 'pino';
import { startWorker } from './worker.js';

runMain('patchbay-worker', async () => {
  const config = loadConfig();
  const log = pino({
    level: config.log.level,
    base: { component: 'worker', workerId: config.worker.id },
    redact: ['config.model.apiKey', '*.secrets', 'secrets'],
  });
  log.debug({ config: redactConfig(config) }, 'configuration');
  const worker = await startWorker(config, log);
  const stop = (signal: string): void => {
    log.info({ signal, running: worker.running() }, 'draining');
    void worker.close().then(() => log.info('stopped'));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
});
