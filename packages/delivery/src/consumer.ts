import { type Logger, silentLogger } from '@patchbay/core';
import { JobQueue, startOutboxConsumer } from '@patchbay/queue';
import type { TaskStore } from '@patchbay/store';
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
  const { redis, prefix } = deps;
  const queue = new JobQueue<DeliveryJob>({ connection: redis, prefix, name: 'deliveries' });
  const trigger = new DeliveryTrigger({ store: deps.store, queue });
  return startOutboxConsumer<DeliveryJob>({
    ...deps,
    name: 'deliveries',
    queue,
    handle: (entry) => trigger.handle(entry),
    process: (job, { lastTry }) => deps.deliverer.deliver(job.taskId, { lastTry }),
    backoffMs: deliveryBackoff,
    concurrency: 2,
    log: deps.log ?? silentLogger,
  });
}
