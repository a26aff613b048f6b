import { type Config, type Logger, silentLogger } from '@patchbay/core';
import { JobQueue, startOutboxConsumer } from '@patchbay/queue';
import type { TaskStore } from '@patchbay/store';
import type { Redis } from 'ioredis';
import { DeliveryChains } from './chains.js';
import {
  WebhookCourier,
  WebhookDispatcher,
  webhookBackoff,
  type WebhookJob,
} from './dispatcher.js';
import { WebhookRegistry } from './registry.js';
import { WebhookUrlPolicy } from './url-policy.js';

/** How often chains whose head has no job are looked for (after a crash). */
const SWEEP_MS = 30_000;

/**
 * Webhooks as a consumer of the lifecycle outbox: every event to every target that wants it
 * (and a task's own `notify` URL), sent by the `webhooks` queue's worker, retried, in order per
 * task; chains a crash left without a job are picked up by a periodic sweep.
 */
export async function startWebhookConsumer(deps: {
  redis: Redis;
  /** For the connections of its own (the outbox's blocking read, the queue's worker). */
  url: string;
  prefix: string;
  /** This process's name among the outbox's readers. */
  consumer: string;
  store: TaskStore;
  /** The operator's webhook settings (`PATCHBAY_WEBHOOK*`). */
  settings: Config['webhooks'];
  log?: Logger;
}): Promise<{ close(): Promise<void> }> {
  const { redis, prefix, store, settings } = deps;
  const log = deps.log ?? silentLogger;
  const queue = new JobQueue<WebhookJob>({ connection: redis, prefix, name: 'webhooks' });
  const policy = new WebhookUrlPolicy({ allowHosts: settings.allowHosts });
  const registry = new WebhookRegistry({
    redis,
    prefix,
    policy,
    configured: settings.configured,
  });
  const webhookDeps = { store, registry, chains: new DeliveryChains(redis, prefix), queue, log };
  const dispatcher = new WebhookDispatcher(webhookDeps);
  const courier = new WebhookCourier(webhookDeps, {
    policy,
    retryMs: settings.retryMs,
    timeoutMs: settings.timeoutMs,
    notifyTarget: async (taskId) => {
      const task = await store.get(taskId);
      if (!task?.notify) return null;
      return { url: task.notify.url, secrets: await registry.notifySecrets(task.tenant) };
    },
  });
  const consumer = await startOutboxConsumer<WebhookJob>({
    ...deps,
    name: 'webhooks',
    queue,
    handle: (entry) => dispatcher.dispatch(entry),
    process: (job, { attemptsMade }) => courier.send(job, attemptsMade),
    backoffMs: webhookBackoff(settings.backoffMs),
    concurrency: 8,
    log,
  });
  const sweep = (): void =>
    void courier.sweep().catch((err: unknown) => log.warn({ err }, 'webhook sweep failed'));
  sweep();
  const sweeper = setInterval(sweep, SWEEP_MS);
  return {
    close: async () => {
      clearInterval(sweeper);
      await consumer.close();
    },
  };
}
