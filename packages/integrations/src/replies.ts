import { type LifecycleEventType, type Logger, type Task, silentLogger } from '@patchbay/core';
import type { ThreadRef } from '@patchbay/delivery';
import { JobQueue, startOutboxConsumer } from '@patchbay/queue';
import type { OutboxEntry, TaskStore } from '@patchbay/store';
import type { Redis } from 'ioredis';
import type { ForgeFor } from './payloads.js';

/** A job of the `replies` queue: what happened to a task a mention started. */
export interface ReplyJob {
  taskId: string;
  type: LifecycleEventType;
  turn: number;
}

/** The lifecycle events a mention's thread hears of. */
const ANSWERED: readonly LifecycleEventType[] = [
  'task.queued',
  'turn.queued',
  'task.delivered',
  'task.delivery_failed',
  'task.failed',
  'task.cancelled',
];

/** At most this much of the agent's summary goes into a comment. */
const SUMMARY_CHARS = 4000;

export interface ReplierDeps {
  store: TaskStore;
  forgeFor: ForgeFor;
  /** Base URL of the API: the page's link to the task. */
  publicUrl: string;
  log?: Logger;
}

/**
 * Answers on the forge thread a task came from: that the work started (with a link to the task),
 * then how it ended: the pull request opened or the commit pushed, or why it failed. A turn after
 * the first answers on the task's pull request, where follow-ups are asked for.
 */
export class Replier {
  readonly #d: ReplierDeps;
  readonly #log: Logger;

  constructor(deps: ReplierDeps) {
    this.#d = deps;
    this.#log = deps.log ?? silentLogger;
  }

  async reply(job: ReplyJob, options: { lastTry: boolean }): Promise<void> {
    const task = await this.#d.store.get(job.taskId);
    const mention = task?.origin.mention;
    if (!task || task.origin.kind !== 'mention' || mention === undefined) return;
    const forge = await this.#d.forgeFor(task.repo.url, mention.forge);
    if (forge === null) {
      this.#log.warn(
        { taskId: task.id },
        'no forge API for the repository: the thread gets no answer',
      );
      return;
    }
    const pr = task.delivery?.pullRequest ?? null;
    const thread: ThreadRef =
      job.turn > 1 && pr !== null
        ? { repo: mention.repo, number: pr.number, pullRequest: true }
        : { repo: mention.repo, number: mention.number, pullRequest: mention.pullRequest };
    try {
      await forge.comment(thread, this.#text(task, job));
    } catch (err) {
      if (!options.lastTry) throw err;
      this.#log.warn({ taskId: task.id, type: job.type, err }, 'the answer on the forge failed');
    }
  }

  #text(task: Task, job: ReplyJob): string {
    const link = `[${task.id}](${this.#d.publicUrl}/#/tasks/${encodeURIComponent(task.id)})`;
    const delivery = task.delivery;
    const turnResult = task.turns[job.turn - 1]?.result ?? task.result;
    const summary = turnResult?.summary?.trim().slice(0, SUMMARY_CHARS) ?? '';
    switch (job.type) {
      case 'task.queued':
        return `Patchbay is on it: task ${link}.`;
      case 'turn.queued':
        return `Patchbay is on it: turn ${job.turn} of task ${link}.`;
      case 'task.delivered': {
        const where =
          delivery?.pullRequest && job.turn === 1
            ? `opened ${delivery.pullRequest.url}`
            : `pushed ${delivery?.commit?.slice(0, 12) ?? 'a commit'} to \`${delivery?.branch ?? ''}\``;
        const verify = turnResult?.verify;
        const verdict =
          verify == null
            ? ''
            : ` Verify ${verify.passed ? 'passed' : 'failed'}: \`${verify.command}\`.`;
        return [`Done: ${where} (task ${link}).${verdict}`, ...(summary ? ['', summary] : [])].join(
          '\n',
        );
      }
      case 'task.delivery_failed':
        return `The change of task ${link} is made, but it could not be delivered: ${delivery?.error?.message ?? 'unknown error'}.`;
      case 'task.cancelled':
        return `Task ${link} was cancelled.`;
      default:
        return `Task ${link} failed (${task.error?.code ?? 'error'}): ${task.error?.message ?? ''}`;
    }
  }
}

/** Queues an answer for each lifecycle event of a mention's task; the same event, the same job. */
class ReplyTrigger {
  readonly #store: TaskStore;
  readonly #queue: { add(id: string, job: ReplyJob): Promise<void> };

  constructor(deps: {
    store: TaskStore;
    queue: { add(id: string, job: ReplyJob): Promise<void> };
  }) {
    this.#store = deps.store;
    this.#queue = deps.queue;
  }

  async handle({ event }: OutboxEntry): Promise<void> {
    if (!ANSWERED.includes(event.type)) return;
    const task = await this.#store.get(event.taskId);
    if (task?.origin.kind !== 'mention') return;
    await this.#queue.add(`${event.taskId}_${event.type}_t${event.turn}`, {
      taskId: event.taskId,
      type: event.type,
      turn: event.turn,
    });
  }
}

/**
 * Answers as a consumer of the lifecycle outbox, through the `replies` queue (retried while the
 * forge is away). Run by every worker; one reads the outbox at a time.
 */
export async function startReplyConsumer(deps: {
  redis: Redis;
  url: string;
  prefix: string;
  consumer: string;
  replier: Replier;
  store: TaskStore;
  log?: Logger;
}): Promise<{ close(): Promise<void> }> {
  const queue = new JobQueue<ReplyJob>({
    connection: deps.redis,
    prefix: deps.prefix,
    name: 'replies',
  });
  const trigger = new ReplyTrigger({ store: deps.store, queue });
  return startOutboxConsumer<ReplyJob>({
    ...deps,
    name: 'replies',
    queue,
    handle: (entry) => trigger.handle(entry),
    process: (job, { lastTry }) => deps.replier.reply(job, { lastTry }),
    backoffMs: (attemptsMade) => 2000 * 2 ** Math.max(0, attemptsMade - 1),
    concurrency: 2,
    log: deps.log ?? silentLogger,
  });
}
