import { type Logger, silentLogger } from '@patchbay/core';
import { JobQueue, SIDE_QUEUE_TRIES, createJobWorker, createRedis } from '@patchbay/queue';
import { OutboxReader, type TaskStore } from '@patchbay/store';
import type { Redis } from 'ioredis';
import type { Deliverer } from './deliverer.js';
import { DeliveryTrigger, deliveryBackoff, type DeliveryJob } from './jobs.js';

/**
 * Delivery as a consumer of the lifecycle outbox: a task that asked for it is queued for
 * delivery when a turn succeeds (`POST /deliver` queues the same job), and the `deliveries`
 * queue's worker delivers it, retried. Run by every worker; one reads the outbox at a time.
 */
export async function startDeliveryConsumer(deps: {
  redis: Redis;
  /** For the connections of its own (the outbox's blocking read, the queue's worker). */
  url: string;
  prefix: string;
  /** This process's name among the outbox's readers. */
  consumer: string;
  store: TaskStore;
  deliverer: Deliverer;
  log?: Logger;
}): Promise<{ close(): Promise<void> }> {
  const { redis, url, prefix } = deps;
  const log = deps.log ?? silentLogger;
  const queue = new JobQueue<DeliveryJob>({ connection: redis, prefix, name: 'deliveries' });
  const trigger = new DeliveryTrigger({ store: deps.store, queue });
  const worker = createJobWorker<DeliveryJob>({
    url,
    prefix,
    name: 'deliveries',
    concurrency: 2,
    backoffMs: deliveryBackoff,
    process: (job, { attemptsMade }) =>
      deps.deliverer.deliver(job.taskId, {
        lastTry: attemptsMade + 1 >= SIDE_QUEUE_TRIES.deliveries,
      }),
    onError: (err) => log.warn({ err }, 'delivery queue error'),
  });
  await worker.waitUntilReady();
  const reader = new OutboxReader({
    redis,
    blocking: createRedis({ url, name: 'patchbay-outbox-deliveries' }),
    prefix,
    name: 'deliveries',
    consumer: deps.consumer,
    handle: (entry) => trigger.handle(entry),
    log,
  });
  reader.start();
  return {
    close: async () => {
      await reader.close().catch(() => undefined);
      await worker.close().catch(() => undefined);
      await queue.close().catch(() => undefined);
    },
  };
}
