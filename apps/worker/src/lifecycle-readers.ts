import type { Config } from '@patchbay/core';
import { Deliverer, DeliveryTrigger, deliveryBackoff, type DeliveryJob } from '@patchbay/delivery';
import type { MirrorCache } from '@patchbay/git';
import { JobQueue, SIDE_QUEUE_TRIES, createJobWorker, createRedis } from '@patchbay/queue';
import {
  OutboxReader,
  type ArtifactStore,
  type OutboxEntry,
  type TaskStore,
} from '@patchbay/store';
import {
  DeliveryChains,
  WebhookCourier,
  WebhookDispatcher,
  WebhookRegistry,
  WebhookUrlPolicy,
  webhookBackoff,
  type WebhookJob,
} from '@patchbay/webhooks';
import type { Redis } from 'ioredis';
import type { Logger as PinoLogger } from 'pino';

/** How often chains whose head has no job are looked for (after a crash). */
const SWEEP_MS = 30_000;

/**
 * What hangs off the lifecycle outbox, run by workers: delivery (a task that asked for it is
 * pushed when a turn succeeds; `POST /deliver` queues the same job) and webhooks (every event
 * to every target that wants it, retried, in order per task).
 */
export async function startLifecycleReaders(deps: {
  config: Config;
  redis: Redis;
  store: TaskStore;
  artifacts: ArtifactStore;
  mirrors: MirrorCache;
  log: PinoLogger;
}): Promise<{ close(): Promise<void> }> {
  const { config, redis, store, log } = deps;
  const { prefix } = config.redis;
  const url = config.redis.url;
  const consumer = config.worker.id;

  const deliveries = new JobQueue<DeliveryJob>({ connection: redis, prefix, name: 'deliveries' });
  const deliverer = new Deliverer({
    store,
    artifacts: deps.artifacts,
    push: (repoUrl, request) => deps.mirrors.deliver(repoUrl, request),
    credentials: config.delivery.credentials,
    forges: config.delivery.forges,
    author: config.delivery.author,
    publicUrl: config.publicUrl,
    log: log.child({ component: 'delivery' }),
  });
  const trigger = new DeliveryTrigger({ store, queue: deliveries });

  const webhookQueue = new JobQueue<WebhookJob>({ connection: redis, prefix, name: 'webhooks' });
  const policy = new WebhookUrlPolicy({ allowHosts: config.webhooks.allowHosts });
  const registry = new WebhookRegistry({
    redis,
    prefix,
    policy,
    configured: config.webhooks.configured,
  });
  const webhookDeps = {
    store,
    registry,
    chains: new DeliveryChains(redis, prefix),
    queue: webhookQueue,
    log: log.child({ component: 'webhooks' }),
  };
  const dispatcher = new WebhookDispatcher(webhookDeps);
  const courier = new WebhookCourier(webhookDeps, {
    policy,
    retryMs: config.webhooks.retryMs,
    timeoutMs: config.webhooks.timeoutMs,
    notifyTarget: async (taskId) => {
      const task = await store.get(taskId);
      if (!task?.notify) return null;
      return { url: task.notify.url, secret: await registry.notifySecret(task.tenant) };
    },
  });

  const handlers: Record<string, (entry: OutboxEntry) => Promise<void>> = {
    deliveries: (entry) => trigger.handle(entry),
    webhooks: (entry) => dispatcher.dispatch(entry),
  };
  const readers = Object.entries(handlers).map(
    ([name, handle]) =>
      new OutboxReader({
        redis,
        blocking: createRedis({ url, name: `patchbay-outbox-${name}` }),
        prefix,
        name,
        consumer,
        handle,
        log,
      }),
  );
  const workers = [
    createJobWorker<DeliveryJob>({
      url,
      prefix,
      name: 'deliveries',
      concurrency: 2,
      backoffMs: deliveryBackoff,
      process: (job, { attemptsMade }) =>
        deliverer.deliver(job.taskId, { lastTry: attemptsMade + 1 >= SIDE_QUEUE_TRIES.deliveries }),
      onError: (err) => log.warn({ err }, 'delivery queue error'),
    }),
    createJobWorker<WebhookJob>({
      url,
      prefix,
      name: 'webhooks',
      concurrency: 8,
      backoffMs: webhookBackoff(config.webhooks.backoffMs),
      process: (job, { attemptsMade }) => courier.send(job, attemptsMade),
      onError: (err) => log.warn({ err }, 'webhook queue error'),
    }),
  ];
  await Promise.all(workers.map((w) => w.waitUntilReady()));
  for (const reader of readers) reader.start();
  const sweep = (): void =>
    void courier.sweep().catch((err: unknown) => log.warn({ err }, 'webhook sweep failed'));
  sweep();
  const sweeper = setInterval(sweep, SWEEP_MS);
  return {
    close: async () => {
      clearInterval(sweeper);
      await Promise.allSettled(readers.map((r) => r.close()));
      await Promise.allSettled(workers.map((w) => w.close()));
      await Promise.allSettled([deliveries.close(), webhookQueue.close()]);
    },
  };
}
