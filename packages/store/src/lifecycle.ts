import {
  EMPTY_USAGE,
  type ErrorCode,
  PatchbayError,
  type Task,
  type TaskResult,
  type TurnResult,
  capText,
  currentTurn,
  isTerminal,
  lastResultTurn,
  newTurn,
  withCurrentTurn,
} from '@patchbay/core';
import type { EventLog, TaskStore } from './types.js';

/** How a task's turn ends. */
export interface TaskOutcome {
  status: 'succeeded' | 'failed' | 'cancelled';
  /** Why it failed or was cancelled; null for a success. */
  error: { code: ErrorCode; message: string } | null;
  /** The task's cumulative result as of this turn; the record's own result is kept when absent. */
  result?: TaskResult | null;
  /** What the turn alone did; absent when it got no workspace result. */
  turnResult?: TurnResult | null;
}

/**
 * The one owner of a task's lifecycle transitions, whoever makes them.
 *
 * Ending: the pipeline when a run finishes (or is cancelled, or times out), the API when it
 * cancels a task that never started, the worker when a job is given up. Ending writes the
 * terminal record with its current turn ended too (the store's script writes its lifecycle event
 * to the outbox in the same step), appends the terminal status event, which is the last of the
 * turn's log, deletes the task's secrets and archives its events. A task that has ended already
 * is left as it is: it has its lifecycle event and status event already.
 *
 * Reopening (a follow-up): an ended task with a workspace result goes back to `queued` with a new
 * turn, its log carrying on from the last seq.
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

  /** Ends the task's current turn; resolves to the record as ended, or null when it had ended. */
  async end(taskId: string, outcome: TaskOutcome): Promise<Task | null> {
    const { status, error } = outcome;
    const finishedAt = this.#now().toISOString();
    const ended = await this.#store.update(taskId, (t) =>
      withCurrentTurn(
        {
          ...t,
          status,
          finishedAt,
          result: outcome.result ?? t.result,
          error: error === null ? null : { ...error, phase: t.phase },
          usage: t.usage ?? EMPTY_USAGE,
        },
        (turn) => ({
          ...turn,
          status,
          finishedAt,
          error: error === null ? null : { ...error, phase: t.phase },
          result: outcome.turnResult ?? turn.result,
        }),
      ),
    );
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

  /**
   * Puts an ended task back in the queue with `prompt` as its next turn. Refuses (`conflict`) a
   * task that has not ended, a cancelled one, and one whose turns never left a workspace result
   * to go on from; `rate_limited` past the tenant's cap of active tasks.
   */
  async reopen(task: Task, prompt: string, options: { maxActive?: number } = {}): Promise<Task> {
    const createdAt = this.#now().toISOString();
    const reopened = await this.#store.reopen(
      task.id,
      (t) => {
        refuseFollowUp(t);
        const turn = t.turn + 1;
        // A record from before turns gets its first turn written out.
        const turns = t.turns.length === 0 ? [currentTurn(t)] : t.turns;
        return {
          ...t,
          status: 'queued',
          phase: null,
          finishedAt: null,
          error: null,
          attempts: 0,
          cancelRequested: false,
          turn,
          turns: [...turns, newTurn(turn, prompt, createdAt)],
        };
      },
      {
        ...(options.maxActive === undefined ? {} : { maxActive: options.maxActive }),
        events: (next) => [
          { type: 'turn', turn: next.turn, ...turnPrompt(prompt) },
          { type: 'status', status: 'queued', phase: null },
        ],
        log: () => this.#events.read(task.id),
      },
    );
    return reopened;
  }
}

/** The prompt as the `turn` event carries it (events are capped; the record has it whole). */
function turnPrompt(prompt: string): { prompt: string; droppedBytes?: number } {
  const { text, droppedBytes } = capText(prompt, 16 * 1024);
  return droppedBytes === undefined ? { prompt: text } : { prompt: text, droppedBytes };
}

/** Throws the 409 a follow-up on this record gets, if any. */
function refuseFollowUp(task: Task): void {
  if (!isTerminal(task.status)) {
    throw new PatchbayError(
      'conflict',
      `the task is ${task.status}; a follow-up can be sent once its turn has ended`,
      { details: { status: task.status } },
    );
  }
  if (task.status === 'cancelled') {
    throw new PatchbayError('conflict', 'the task was cancelled; start a new task instead', {
      details: { status: task.status },
    });
  }
  if (lastResultTurn(task) === null) {
    throw new PatchbayError(
      'conflict',
      'the task left no workspace to go on from (it failed before its changes were collected); start a new task instead',
      { details: { status: task.status, reason: 'no_workspace_result' } },
    );
  }
}
