import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createRedis } from './redis.js';
import { bullPrefix } from './task-queue.js';

const SCHEDULE_QUEUE_NAME = 'schedules';
/** Longest a closing worker waits for the firing it is processing. */
const CLOSE_WAIT_MS = 5000;

/**
 * Schedules as BullMQ job schedulers: one per schedule, keyed by its id, adding a `fire` job each
 * time its cron pattern comes round. BullMQ keeps the timing in Redis, so any number of API
 * instances share it and each firing is processed once.
 */
export class ScheduleQueue {
  readonly #queue: Queue;

  constructor(options: { connection: Redis; prefix: string }) {
    this.#queue = new Queue(SCHEDULE_QUEUE_NAME, {
      connection: options.connection,
      prefix: bullPrefix(options.prefix),
    });
    this.#queue.on('error', () => {});
  }

  /** Starts (or changes) the schedule's firings; rejects when the pattern or zone is invalid. */
  async upsert(id: string, cron: string, timezone: string): Promise<void> {
    await this.#queue.upsertJobScheduler(
      id,
      { pattern: cron, tz: timezone },
      {
        name: 'fire',
        data: { scheduleId: id },
        opts: { removeOnComplete: { count: 100 }, removeOnFail: { count: 100 } },
      },
    );
  }

  /** Stops its firings (a firing already queued still runs, and finds the schedule paused). */
  async remove(id: string): Promise<void> {
    await this.#queue.removeJobScheduler(id);
  }

  /** When it fires next (ms since the epoch); null when it does not. */
  async next(id: string): Promise<number | null> {
    const scheduler = await this.#queue.getJobScheduler(id);
    return scheduler?.next ?? null;
  }

  async close(): Promise<void> {
    await this.#queue.close();
  }
}

/** Runs `fire` for every firing of every schedule; one firing at a time per process. */
export function createScheduleWorker(options: {
  url: string;
  prefix: string;
  fire: (scheduleId: string, at: Date) => Promise<void>;
  onError?: (err: Error) => void;
}): { close(): Promise<void> } {
  const connection = createRedis({ url: options.url, name: 'patchbay-schedules' });
  const worker = new Worker<{ scheduleId: string }>(
    SCHEDULE_QUEUE_NAME,
    async (job) => options.fire(job.data.scheduleId, new Date(job.timestamp)),
    { connection, prefix: bullPrefix(options.prefix), concurrency: 1 },
  );
  worker.on('error', (err) => options.onError?.(err));
  return {
    close: async () => {
      // A worker that never reached Redis would wait for it to close: its connection goes first
      // then, and the firing it may be running is given a few seconds.
      if (connection.status !== 'ready') connection.disconnect();
      await Promise.race([
        worker.close(),
        new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref()),
      ]);
      connection.disconnect();
    },
  };
}
