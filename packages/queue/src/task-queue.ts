import { PatchbayError, retryPolicy } from '@patchbay/core';
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { createRedis } from './redis.js';

/** The one BullMQ queue of Patchbay. */
export const TASK_QUEUE_NAME = 'tasks';

/**
 * A job carries the task id and its turn, nothing else: the record in the store is the truth.
 * Each turn of a conversation is a job of its own (see {@link jobIdOf}).
 */
export const TaskJobData = z.object({
  taskId: z.string().min(1),
  turn: z.number().int().positive().optional(),
  attempt: z.number().int().positive().optional(),
});
export type TaskJobData = z.infer<typeof TaskJobData>;

/**
 * The job id of one attempt of a task's turn: the task id for turn 1's first attempt,
 * `<id>_t<n>` for a later turn's, `<id>_t<n>_a<k>` for attempt k > 1. A job is kept for a while
 * after it ends, and BullMQ ignores an add whose id still exists, so every turn and attempt needs
 * an id of its own; a retried submit of the same one still cannot run it twice.
 */
function jobIdOf(taskId: string, turn = 1, attempt = 1): string {
  const id = checkTaskId(taskId);
  if (attempt > 1) return `${id}_t${turn}_a${attempt}`;
  return turn > 1 ? `${id}_t${turn}` : id;
}

/** BullMQ's key prefix under Patchbay's own: `${prefix}:bull:tasks:…`. */
export function bullPrefix(prefix: string): string {
  return `${prefix}:bull`;
}

/**
 * Task ids become BullMQ job ids and Redis key parts. BullMQ refuses ids with `:` and
 * integer-looking ids (they clash with its own counters), so ids stick to a safe alphabet.
 */
const TASK_ID = /^(?![0-9]+$)[A-Za-z0-9_-]{1,128}$/;

function checkTaskId(taskId: string): string {
  if (!TASK_ID.test(taskId)) {
    throw new PatchbayError(
      'validation_error',
      'task id must be 1-128 characters of A-Z a-z 0-9 _ - and not all digits',
      { details: { field: 'taskId' } },
    );
  }
  return taskId;
}

export interface TaskQueueOptions {
  /**
   * A Redis URL, or a client the caller owns (and closes after `close()`). Passing the API's
   * fail-fast client makes `enqueue` fail promptly when Redis is down instead of queueing.
   */
  connection: string | Redis;
  /** Patchbay's key prefix; BullMQ's keys go under `${prefix}:bull`. */
  prefix: string;
  /**
   * Tries of a job whose processor throws a retryable error. Task-level failures throw
   * `UnrecoverableError` and are never retried; a crashed worker's job comes back through stalled
   * recovery, which does not count against this.
   * @default 3
   */
  attempts?: number;
  /**
   * First retry delay, doubled on each further attempt.
   * @default 5000
   */
  backoffMs?: number;
}

/** Job counts by state, for metrics. */
export interface QueueCounts {
  waiting: number;
  active: number;
  delayed: number;
  prioritized: number;
  completed: number;
  failed: number;
}

/** States from which a job can still be taken off the queue (it has not started). */
const REMOVABLE_STATES = new Set(['waiting', 'delayed', 'prioritized', 'waiting-children']);

/** The producer side of the `tasks` queue: enqueue, cancel while queued, counts, liveness. */
export class TaskQueue {
  private readonly queue: Queue<TaskJobData, void, 'task'>;
  private readonly redis: Redis;
  private readonly ownsRedis: boolean;
  private readonly jobOptions: JobsOptions;
  private closing: Promise<void> | undefined;

  constructor(options: TaskQueueOptions) {
    this.ownsRedis = typeof options.connection === 'string';
    this.redis =
      typeof options.connection === 'string'
        ? createRedis({ url: options.connection, name: `${options.prefix}:queue` })
        : options.connection;
    this.queue = new Queue<TaskJobData, void, 'task'>(TASK_QUEUE_NAME, {
      connection: this.redis,
      prefix: bullPrefix(options.prefix),
    });
    // Errors also surface on the calls that hit them; without a listener they would be thrown.
    this.queue.on('error', () => {});
    this.jobOptions = {
      attempts: options.attempts ?? retryPolicy.tries,
      backoff: { type: 'exponential', delay: options.backoffMs ?? retryPolicy.backoffMs },
      // How long ended jobs are kept is the workers' to apply (`keepEnded`), not written into
      // every job: a submit's add stays smaller.
    };
  }

  /**
   * Queues the task. Idempotent: the job id is the task id, and BullMQ ignores an add whose id
   * still exists, so a retried request cannot run a task twice.
   */
  async enqueue(taskId: string, turn = 1, attempts: readonly number[] = [1]): Promise<void> {
    const jobs = attempts.map((attempt) => ({
      name: 'task' as const,
      data: {
        taskId: checkTaskId(taskId),
        ...(turn > 1 ? { turn } : {}),
        ...(attempt > 1 ? { attempt } : {}),
      },
      opts: { ...this.jobOptions, jobId: jobIdOf(taskId, turn, attempt) },
    }));
    // One job is one script call. Several (best-of-N) go in one MULTI, all or none; BullMQ builds
    // a pipeline for that, which costs more than the script itself, so one job does not use it.
    const [only] = jobs;
    if (jobs.length === 1 && only !== undefined)
      await this.queue.add(only.name, only.data, only.opts);
    else await this.queue.addBulk(jobs);
  }

  /**
   * Takes a job that has not started off the queue. False when there is none or it is already
   * active: a running task is cancelled through the cancel channel instead.
   */
  async remove(taskId: string, turn = 1, attempt = 1): Promise<boolean> {
    const jobId = jobIdOf(taskId, turn, attempt);
    const state = await this.queue.getJobState(jobId);
    if (!REMOVABLE_STATES.has(state)) return false;
    // BullMQ refuses to remove a locked (active) job, so a job that started in between stays.
    return (await this.queue.remove(jobId)) === 1;
  }

  async counts(): Promise<QueueCounts> {
    const c = await this.queue.getJobCounts(
      'waiting',
      'active',
      'delayed',
      'prioritized',
      'completed',
      'failed',
    );
    return {
      waiting: c['waiting'] ?? 0,
      active: c['active'] ?? 0,
      delayed: c['delayed'] ?? 0,
      prioritized: c['prioritized'] ?? 0,
      completed: c['completed'] ?? 0,
      failed: c['failed'] ?? 0,
    };
  }

  /**
   * Whether the task's job is active and its lock is held, that is, a live worker is running it
   * now. A crashed worker's job stays in the active list until the stalled check moves it, but its
   * lock lapses within `lockDuration`: that is what tells the sandbox reaper the task is orphaned.
   * With `workerId`, also whether it is that worker (the job's `name`) that runs it: after a
   * crash the task may run again elsewhere, and the dead worker's container is still an orphan.
   */
  async isActive(taskId: string, workerId?: string, turn = 1, attempt = 1): Promise<boolean> {
    const jobId = jobIdOf(taskId, turn, attempt);
    // One script, so that all facts come from the same instant. BullMQ records the name of the
    // worker that took the job in the job hash's `pb` field.
    const live = await this.redis.eval(
      `if not redis.call('LPOS', KEYS[1], ARGV[1]) or redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
       if ARGV[2] ~= '' and redis.call('HGET', KEYS[3], 'pb') ~= ARGV[2] then return 0 end
       return 1`,
      3,
      this.queue.toKey('active'),
      `${this.queue.toKey(jobId)}:lock`,
      this.queue.toKey(jobId),
      jobId,
      workerId ?? '',
    );
    return live === 1;
  }

  /** Closes the queue (and the connection when it made it). Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue.close().catch(() => {});
      if (this.ownsRedis) await this.redis.quit().catch(() => this.redis.disconnect());
    })();
    return this.closing;
  }
}
