import { EMPTY_USAGE, type ErrorCode, type Task, type TaskResult } from '@patchbay/core';
import type { EventLog, TaskStore } from './types.js';

/** How a task ends. */
export interface TaskOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Why it failed or was cancelled; null for a success. */
  error: { code: ErrorCode; message: string } | null;
  /** What the run produced; the record's own result is kept when absent. */
  result?: TaskResult | null;
}

/**
 * The one place a task ends, whoever ends it: the pipeline when a run finishes (or is cancelled,
 * or times out), the API when it cancels a task that never started, the worker when a job is
 * given up. Ending writes the terminal record (the store's script writes its lifecycle event to
 * the outbox in the same step), appends the terminal status event, which is the last of the
 * log, deletes the task's secrets and archives its events. A task that has ended already is left
 * as it is: terminal states are final, and it has its lifecycle event and status event already.
 */
export class TaskLifecycle {
  readonly #store: TaskStore;
  readonly #events: EventLog;
  readonly #now: () => Date;

  constructor(deps: { store: TaskStore; events: EventLog; now?: () => Date }) {
    this.#store = deps.store;
    this.#events = deps.events;
    this.#now = deps.now ?? (() => new Date());
  }

  /** Ends the task; resolves to the record as ended, or null when it had ended already. */
  async end(taskId: string, outcome: TaskOutcome): Promise<Task | null> {
    const { status, error } = outcome;
    const ended = await this.#store.update(taskId, (t) => ({
      ...t,
      status,
      finishedAt: this.#now().toISOString(),
      result: outcome.result ?? t.result,
      error: error === null ? null : { ...error, phase: t.phase },
      usage: t.usage ?? EMPTY_USAGE,
    }));
    if (ended === null) return null;
    await this.#events.append(taskId, {
      type: 'status',
      status,
      phase: ended.phase,
      ...(error === null ? {} : { error }),
    });
    await this.#store.deleteSecrets(taskId);
    await this.#events.archive(taskId);
    return ended;
  }
}
