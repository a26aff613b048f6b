import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { bullPrefix } from './task-queue.js';
import { createRedis } from './redis.js';

/**
 * The queues beside `tasks`, for work that hangs off a task's lifecycle rather than running it:
 * `deliveries` (push a result, open its pull request), `webhooks` (POST an event), `replies`
 * (answer a forge thread that started a task with a comment), and `schedules` (a schedule's
 * firings, added by BullMQ job schedulers: see `ScheduleQueue`). A job
 * carries a small JSON payload; what it acts on is read from the store when it runs.
 */
export type SideQueueName = 'deliveries' | 'webhooks' | 'replies' | 'schedules';

export interface JobQueueOptions {
  /** A client the caller owns; the queue never closes it. */
  connection: Redis;
  prefix: string;
  name: SideQueueName;
}

/**
 * Runs of a job in all (a throwing processor runs again after {@link JobWorkerOptions.backoffMs}):
 * a delivery or a reply a few times (a push or a forge briefly away); a webhook until its
 * processor gives up, which it does by time (24 h by default), not by count.
 */
export const SIDE_QUEUE_TRIES: Record<SideQueueName, number> = {
  deliveries: 3,
  webhooks: 1_000_000,
  replies: 5,
  schedules: 1,
};

/** Longest a closing worker waits for the job it is running. */
const CLOSE_WAIT_MS = 5000;

/** The producer side of a side queue. */
export class JobQueue<T extends object> {
  readonly #queue: Queue;

  constructor(options: JobQueueOptions) {
    this.#queue = new Queue(options.name, {
      connection: options.connection,
      prefix: bullPrefix(options.prefix),
    });
    this.#queue.on('error', () => {});
  }

  /**
   * Adds a job under `id`. Idempotent while a job of that id exists: BullMQ ignores the add, so a
   * job added twice (a reader of the outbox that crashed between adding and acknowledging) runs once.
   */
  async add(id: string, data: T): Promise<void> {
    await this.#queue.add(this.#queue.name, data, {
      jobId: id,
      attempts: SIDE_QUEUE_TRIES[this.#queue.name as SideQueueName],
      backoff: { type: 'custom' },
      removeOnComplete: { age: 3600, count: 1000 },
      removeOnFail: { age: 7 * 86_400, count: 10_000 },
    });
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}

export interface JobWorkerOptions<T> {
  /** Redis URL; BullMQ opens its own (blocking) connections from it. */
  url: string;
  prefix: string;
  name: SideQueueName;
  /** Throws to run again later, while the queue's tries ({@link SIDE_QUEUE_TRIES}) last. */
  process: (
    data: T,
    context: {
      id: string;
      attemptsMade: number;
      /** When the job was added (ms since the epoch). */
      addedAt: number;
    },
  ) => Promise<void>;
  /** Delay before run `attemptsMade + 1`. */
  backoffMs: (attemptsMade: number) => number;
  /** @default 4 */
  concurrency?: number;
  onError?: (err: Error) => void;
}

export interface JobWorker {
  waitUntilReady(): Promise<void>;
  close(): Promise<void>;
}

/** The consumer side of a side queue. */
export function createJobWorker<T extends object>(options: JobWorkerOptions<T>): JobWorker {
  const connection = createRedis({ url: options.url, name: `patchbay-${options.name}` });
  const worker = new Worker<T>(
    options.name,
    async (job) => {
      await options.process(job.data, {
        id: job.id ?? '',
        attemptsMade: job.attemptsMade,
        addedAt: job.timestamp,
      });
    },
    {
      connection,
      prefix: bullPrefix(options.prefix),
      concurrency: options.concurrency ?? 4,
      settings: { backoffStrategy: (attemptsMade: number) => options.backoffMs(attemptsMade) },
    },
  );
  worker.on('error', (err) => options.onError?.(err));
  return {
    waitUntilReady: async () => {
      await worker.waitUntilReady();
    },
    close: async () => {
      // A worker that never reached Redis would wait for it to close: its connection goes first
      // then, and the job it may be running is given a few seconds.
      if (connection.status !== 'ready') connection.disconnect();
      await Promise.race([
        worker.close(),
        new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref()),
      ]);
      connection.disconnect();
    },
  };
}
