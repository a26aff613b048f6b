import type { Logger } from '@patchbay/core';
import { OutboxReader, type OutboxEntry } from '@patchbay/store';
import type { Redis } from 'ioredis';
import {
  type JobQueue,
  SIDE_QUEUE_TRIES,
  type SideQueueName,
  createJobWorker,
} from './job-queue.js';
import { createRedis } from './redis.js';

export interface OutboxConsumerOptions<T extends object> {
  redis: Redis;
  /** For the connections of its own (the outbox's blocking read, the queue's worker). */
  url: string;
  prefix: string;
  /** This process's name among the outbox's readers. */
  consumer: string;
  name: SideQueueName;
  /** The side queue `handle` adds jobs to; closed with the consumer. */
  queue: JobQueue<T>;
  /** Turns an outbox entry into jobs; idempotent (an entry may come twice). */
  handle: (entry: OutboxEntry) => Promise<void>;
  /** Runs a job; throws to run it again, unless it is the last try. */
  process: (job: T, context: { attemptsMade: number; lastTry: boolean }) => Promise<void>;
  backoffMs: (attemptsMade: number) => number;
  concurrency: number;
  log: Logger;
}

/**
 * Work that hangs off the lifecycle outbox: a reader (one process at a time reads, in order)
 * turns events into jobs of a side queue, whose worker runs them, retried. Run by every worker.
 */
export async function startOutboxConsumer<T extends object>(
  o: OutboxConsumerOptions<T>,
): Promise<{ close(): Promise<void> }> {
  const worker = createJobWorker<T>({
    url: o.url,
    prefix: o.prefix,
    name: o.name,
    concurrency: o.concurrency,
    backoffMs: o.backoffMs,
    process: (job, { attemptsMade }) =>
      o.process(job, { attemptsMade, lastTry: attemptsMade + 1 >= SIDE_QUEUE_TRIES[o.name] }),
    onError: (err) => o.log.warn({ err }, `${o.name} queue error`),
  });
  await worker.waitUntilReady();
  const reader = new OutboxReader({
    redis: o.redis,
    blocking: createRedis({ url: o.url, name: `patchbay-outbox-${o.name}` }),
    prefix: o.prefix,
    name: o.name,
    consumer: o.consumer,
    handle: o.handle,
    log: o.log,
  });
  reader.start();
  return {
    close: async () => {
      await reader.close().catch(() => undefined);
      await worker.close().catch(() => undefined);
      await o.queue.close().catch(() => undefined);
    },
  };
}
