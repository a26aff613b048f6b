import { PatchbayError, isPatchbayError, retryPolicy } from '@patchbay/core';
import { UnrecoverableError, WaitingError, Worker, type Job, type KeepJobs } from 'bullmq';
import { TASK_QUEUE_NAME, TaskJobData, bullPrefix } from './task-queue.js';

export interface TaskProcessorContext {
  /**
   * Aborts when the task is cancelled (`TaskWorker.cancel`, reason: `PatchbayError('cancelled')`),
   * when the worker shuts down past its grace period, or when the job's lock was lost to another
   * worker (reason: `PatchbayError('unavailable')`, see {@link isHandBackAbort}). On a hand-back
   * abort the processor should stop and throw without touching the task record: the job goes
   * back to the queue and runs again, elsewhere.
   */
  signal: AbortSignal;
  /**
   * Which start of this job this is, from 1. Above 1 the task ran before (a crash, a shutdown or
   * a retryable error), so a fresh sandbox should replace whatever the earlier start left.
   */
  try: number;
  /** The task's turn the job runs (1 until a follow-up). */
  turn: number;
  /** Which of the turn's attempts the job runs (1 unless the task asked for several). */
  attempt: number;
  job: Job<TaskJobData, void, string>;
}

/** Runs one task. Throw `UnrecoverableError` for failures that retrying cannot fix. */
export type TaskProcessor = (taskId: string, context: TaskProcessorContext) => Promise<void>;

export interface TaskWorkerOptions {
  /** Redis URL; BullMQ opens (and closes) its own connections from it, one of them blocking. */
  url: string;
  /** Patchbay's key prefix; BullMQ's keys go under `${prefix}:bull`. */
  prefix: string;
  processor: TaskProcessor;
  /**
   * Tasks run at once by this worker.
   * @default 1
   */
  concurrency?: number;
  /**
   * How long a job's lock lasts without renewal (renewed every half of it while the processor
   * runs). A SIGKILLed worker's jobs are free to be recovered this long after it died.
   * @default 30000
   */
  lockDuration?: number;
  /**
   * How often this worker looks for active jobs whose lock has lapsed and hands them back. With
   * the lock duration it bounds how long a crashed worker's task waits: about lockDuration plus
   * two intervals.
   * @default 15000
   */
  stalledInterval?: number;
  /**
   * How many times a job may be found stalled (its worker died) before it fails for good instead
   * of running again — so a task that crashes its worker every time cannot loop forever.
   * @default 2
   */
  maxStalledCount?: number;
  /**
   * After `close` has aborted the running tasks, how long it still waits for their processors to
   * return before it stops waiting (their locks then lapse and stalled recovery takes over).
   * @default 10000
   */
  abortGraceMs?: number;
  /**
   * How long, and how many, ended jobs BullMQ keeps for inspection before removing them; the
   * task record, not the job, is the lasting result. Applied by the worker as each job ends
   * (the jobs themselves name none, which keeps a submit's add small).
   * @default a day and a thousand completed, a week and ten thousand failed
   */
  keepEnded?: { completed: KeepJobs; failed: KeepJobs };
  /** Worker name, shown in `CLIENT LIST` and on jobs. */
  name?: string;
  /**
   * Receives errors no caller awaits: connection trouble, failures to hand a job back.
   * @default ignore
   */
  onError?: (err: Error) => void;
  /**
   * Called once for a job that will not run again: out of tries, stalled too often (its worker
   * died each time), or failed for good (`UnrecoverableError`). Its task must not be left
   * running; the decision is made here, from the job, never re-derived by the caller.
   * @default ignore
   */
  onGivenUp?: (job: { taskId: string; attempt: number; reason: string }) => void;
}

interface Running {
  controller: AbortController;
  /** Set when the worker aborts the job for shutdown: a failure then hands it back. */
  handBack: boolean;
  /** The task the job belongs to (a job per turn and attempt). */
  taskId: string;
  /** The processor's run of the job; settles when it has returned or thrown. */
  done: Promise<void>;
}

/**
 * Whether an abort reason means "this worker gives the task up and it will run again" (shutdown,
 * lost lock) rather than "the task is cancelled".
 */
export function isHandBackAbort(reason: unknown): boolean {
  return isPatchbayError(reason, 'unavailable') && reason.details?.['handBack'] === true;
}

function handBackReason(why: string): PatchbayError {
  return new PatchbayError('unavailable', `${why}; the task is handed back`, {
    details: { handBack: true },
  });
}

/**
 * A BullMQ worker on the `tasks` queue that runs a {@link TaskProcessor} per job, with an abort
 * signal per task (for cancel and shutdown) and a draining `close`.
 */
export class TaskWorker {
  /** The underlying BullMQ worker, for its events ('failed', 'stalled', …). */
  readonly worker: Worker<TaskJobData, void, string>;
  private readonly bull: BullWorker;
  private readonly processor: TaskProcessor;
  private readonly abortGraceMs: number;
  private readonly onError: (err: Error) => void;
  private readonly jobs = new Map<string, Running>();
  private handingBack = false;
  private closing: Promise<void> | undefined;

  constructor(options: TaskWorkerOptions) {
    this.processor = options.processor;
    this.abortGraceMs = options.abortGraceMs ?? 10_000;
    this.onError = options.onError ?? (() => {});
    // BullMQ passes the signal only to processors that declare three parameters.
    const processJob = (
      job: Job<TaskJobData, void, string>,
      token?: string,
      signal?: AbortSignal,
    ) => this.process(job, token, signal);
    this.worker = this.bull = new BullWorker(TASK_QUEUE_NAME, processJob, {
      connection: { url: options.url },
      prefix: bullPrefix(options.prefix),
      concurrency: options.concurrency ?? 1,
      lockDuration: options.lockDuration ?? 30_000,
      stalledInterval: options.stalledInterval ?? 15_000,
      maxStalledCount: options.maxStalledCount ?? retryPolicy.maxStalled,
      removeOnComplete: options.keepEnded?.completed ?? { age: 86_400, count: 1000 },
      removeOnFail: options.keepEnded?.failed ?? { age: 604_800, count: 10_000 },
      ...(options.name === undefined ? {} : { name: options.name }),
    });
    this.worker.on('error', (err) => this.onError(err));
    const onGivenUp = options.onGivenUp;
    if (onGivenUp !== undefined)
      this.worker.on('failed', (job, err) => {
        if (job === undefined) return;
        const retriesLeft = job.attemptsMade < (job.opts.attempts ?? 1);
        if (retriesLeft && err.name !== 'UnrecoverableError') return;
        onGivenUp({ taskId: job.data.taskId, attempt: job.data.attempt ?? 1, reason: err.message });
      });
    // Another worker may already have taken a job whose lock could not be renewed (it lapsed
    // while Redis was unreachable, say): stop running it here so the task never runs twice.
    this.worker.on('lockRenewalFailed', (jobIds) => {
      for (const jobId of jobIds) {
        const running = this.jobs.get(jobId);
        if (running === undefined) continue;
        running.handBack = true;
        running.controller.abort(handBackReason('the job lock was lost'));
      }
    });
  }

  /** Resolves once the worker is connected and taking jobs. */
  async waitUntilReady(): Promise<void> {
    await this.worker.waitUntilReady();
  }

  /** Ids of the tasks running on this worker now (once per attempt running here). */
  running(): string[] {
    return [...this.jobs.values()].map((running) => running.taskId);
  }

  /**
   * Aborts a task running on this worker (a cancel that arrived through the cancel channel).
   * False when it does not run here.
   */
  cancel(
    taskId: string,
    reason: unknown = new PatchbayError('cancelled', 'task cancelled'),
  ): boolean {
    let found = false;
    for (const running of this.jobs.values()) {
      if (running.taskId !== taskId) continue;
      running.controller.abort(reason);
      found = true;
    }
    return found;
  }

  /**
   * Stops taking jobs, lets running ones finish for up to `graceMs`, then aborts them (see
   * {@link isHandBackAbort}) and hands each back to the queue, where another worker takes it
   * first. Idempotent: later calls return the first call's promise.
   */
  close(
    options: {
      /**
       * How long running tasks may go on before they are aborted and handed back.
       * @default 30000
       */
      graceMs?: number;
    } = {},
  ): Promise<void> {
    this.closing ??= this.shutdown(options.graceMs ?? 30_000);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    // BullMQ's close stops fetching at once and resolves when running jobs have finished.
    const drained = this.worker.close().catch((err: unknown) => this.onError(asError(err)));
    if (await settlesWithin(drained, graceMs)) return;
    this.handingBack = true;
    for (const running of this.jobs.values()) {
      running.handBack = true;
      running.controller.abort(handBackReason('the worker is shutting down'));
    }
    if (await settlesWithin(drained, this.abortGraceMs)) return;
    this.onError(
      new Error(
        `tasks ${this.running().join(', ')} ignored their abort signal; leaving them to stalled recovery`,
      ),
    );
    // BullMQ's close is still waiting for those processors and would renew their locks forever;
    // stop that so the locks lapse, then drop the connections.
    await this.bull.stopLockRenewal();
    await this.worker.disconnect().catch((err: unknown) => this.onError(asError(err)));
  }

  private async process(
    job: Job<TaskJobData, void, string>,
    token: string | undefined,
    bullSignal: AbortSignal | undefined,
  ): Promise<void> {
    const data = TaskJobData.safeParse(job.data);
    if (!data.success) throw new UnrecoverableError(`job ${job.id} has no valid task id`);
    const { taskId, turn = 1, attempt = 1 } = data.data;
    const jobId = job.id ?? taskId;
    let running = this.jobs.get(jobId);
    // This worker still runs the job, yet the queue gave it out again: its lock lapsed (Redis was
    // unreachable for longer than the lock lasts, say) and stalled recovery took it back. A run
    // being handed back is let finish before the job runs afresh; any other goes on, and this
    // delivery, which holds the job's lock now, ends as that run does. Never two runs at once.
    if (running?.handBack === true) {
      await running.done.catch(() => undefined);
      running = undefined;
    }
    const adopted = running !== undefined;
    running ??= this.start(jobId, taskId, job, turn, attempt);
    // BullMQ aborts its own signal on `worker.cancelJob`; follow it as well.
    const { controller } = running;
    const forward = () => controller.abort(bullSignal?.reason);
    bullSignal?.addEventListener('abort', forward, { once: true });
    try {
      await running.done;
    } catch (err) {
      if (!running.handBack || token === undefined) throw err;
      try {
        // Back to the head of the wait list without spending an attempt.
        await job.moveToWait(token);
      } catch (moveErr) {
        // The lock is gone, so stalled recovery will return the job; nothing more to do here.
        this.onError(asError(moveErr));
      }
      // Tells BullMQ the job has been moved already and is neither completed nor failed.
      throw new WaitingError();
    } finally {
      bullSignal?.removeEventListener('abort', forward);
      if (!adopted && this.jobs.get(jobId) === running) this.jobs.delete(jobId);
    }
  }

  /** Runs the processor on a job, registered as running on this worker. */
  private start(
    jobId: string,
    taskId: string,
    job: Job<TaskJobData, void, string>,
    turn: number,
    attempt: number,
  ): Running {
    const controller = new AbortController();
    const running: Running = { controller, handBack: false, taskId, done: Promise.resolve() };
    this.jobs.set(jobId, running);
    // A job fetched while the worker was already handing jobs back goes straight back too.
    if (this.handingBack) {
      running.handBack = true;
      controller.abort(handBackReason('the worker is shutting down'));
    }
    const context = {
      signal: controller.signal,
      try: Math.max(1, job.attemptsStarted),
      turn,
      attempt,
      job,
    };
    // Through a promise, so that a processor that throws at once still settles `done`.
    running.done = Promise.resolve().then(() => this.processor(taskId, context));
    return running;
  }
}

/** BullMQ's worker with a way to stop renewing the locks of jobs it has given up on. */
class BullWorker extends Worker<TaskJobData, void, string> {
  async stopLockRenewal(): Promise<void> {
    await this.lockManager.close();
  }
}

/** Starts a worker on the `tasks` queue; it takes jobs as soon as it is connected. */
export function createTaskWorker(options: TaskWorkerOptions): TaskWorker {
  return new TaskWorker(options);
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}
