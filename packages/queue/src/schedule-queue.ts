import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { createJobWorker } from './job-queue.js';
import { bullPrefix } from './task-queue.js';

const SCHEDULE_QUEUE_NAME = 'schedules' as const;

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
  return createJobWorker<{ scheduleId: string }>({
    url: options.url,
    prefix: options.prefix,
    name: SCHEDULE_QUEUE_NAME,
    concurrency: 1,
    backoffMs: () => 0,
    process: (job, { addedAt }) => options.fire(job.scheduleId, new Date(addedAt)),
    ...(options.onError ? { onError: options.onError } : {}),
  });
}
