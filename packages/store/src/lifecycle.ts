import {
  type Attempt,
  type ErrorCode,
  PatchbayError,
  type Task,
  type TaskResult,
  type TaskStatus,
  type TurnResult,
  attemptLogId,
  capText,
  currentTurn,
  isTerminal,
  lastResultTurn,
  newTurn,
  selectAttempt,
  withAttempt,
  withCurrentTurn,
  withUsageTotals,
} from '@patchbay/core';
import type { EventLog, TaskStore } from './types.js';

type EndStatus = 'succeeded' | 'failed' | 'cancelled';
type EndError = { code: ErrorCode; message: string } | null;

/** How a task's turn, or one attempt of it, ends. */
export interface TaskOutcome {
  status: EndStatus;
  /** Why it failed or was cancelled; null for a success. */
  error: EndError;
  /** The task's cumulative result as of this attempt; absent when it got no workspace result. */
  result?: TaskResult | null;
  /** What the attempt changed in its turn; absent when it got no workspace result. */
  turnResult?: TurnResult | null;
}

/**
 * The one owner of a task's lifecycle transitions, whoever makes them.
 *
 * Ending: an attempt ends when its run finishes (or is cancelled, or times out, or is given up);
 * when it is the last of its turn to end, the turn ends with it, its result the attempt the rule
 * picks ({@link selectAttempt}). The whole task ends at once when the API cancels it before it
 * started, or it could not be queued. Ending writes the record (the store's script writes its lifecycle
 * event to the outbox in the same step when the task's status changes), appends the terminal status
 * event, which is the last of the turn's log, deletes the task's secrets and archives its events. What has ended already is left as it is.
 *
 * Reopening (a follow-up): an ended task with a workspace result goes back to `queued` with a new
 * turn, its log carrying on from the last seq. Choosing: a user may overrule the rule's pick.
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

  /** Ends every attempt of the current turn not ended yet, and so the turn; null when it had ended. */
  async end(taskId: string, outcome: TaskOutcome): Promise<Task | null> {
    const finishedAt = this.#now().toISOString();
    const ended = await this.#store.update(taskId, (t) => {
      let next = t;
      for (const attempt of currentTurn(t).attempts) {
        if (!isTerminal(attempt.status))
          next = withAttempt(next, attempt.n, (a) => endedAttempt(a, outcome, finishedAt, t.phase));
      }
      return endTurn(next, finishedAt);
    });
    if (ended === null) return null;
    await this.#closeTurn(ended);
    return ended;
  }

  /**
   * Ends attempt `n` of the current turn; when it is the last to end, the turn ends too. Resolves
   * to the record as written, or null when the attempt (or the task) had ended already.
   */
  async endAttempt(taskId: string, n: number, outcome: TaskOutcome): Promise<Task | null> {
    const finishedAt = this.#now().toISOString();
    let ended = false;
    // The task's log gets the attempt's `attempt` event (several attempts) in the same step as the
    // record: every other attempt's is then in before the last attempt's write, and so before the
    // turn's terminal status, which that attempt appends after it.
    const written = await this.#store.update(
      taskId,
      (t) => {
        const attempt = currentTurn(t).attempts.find((a) => a.n === n);
        if (attempt === undefined || isTerminal(attempt.status)) return null;
        const next = withAttempt(t, n, (a) => endedAttempt(a, outcome, finishedAt, t.phase));
        ended = currentTurn(next).attempts.every((a) => isTerminal(a.status));
        return ended ? endTurn(next, finishedAt) : withUsageTotals(next);
      },
      {
        events: (next) => (next.attempts > 1 ? [attemptEvent(next, n, outcome)] : []),
      },
    );
    if (written === null) return null;
    if (written.attempts > 1) {
      const log = attemptLogId(written, written.turn, n);
      await this.#events.append(log, statusEvent(outcome.status, written.phase, outcome.error));
      await this.#archive(log);
    }
    if (ended) await this.#closeTurn(written);
    return written;
  }

  /**
   * Makes attempt `n` of the task's last turn its result, overruling the rule's pick (recorded in
   * the selection). The turn must have ended, and the attempt have collected a patch.
   */
  async choose(task: Task, n: number): Promise<Task> {
    const at = this.#now().toISOString();
    const chosen = await this.#store.rewriteEnded(task.id, (t) => {
      const turn = currentTurn(t);
      const attempt = turn.attempts.find((a) => a.n === n);
      if (attempt === undefined)
        throw new PatchbayError('not_found', `the task's turn ${turn.n} has no attempt ${n}`);
      if (!isTerminal(t.status))
        throw new PatchbayError(
          'conflict',
          `the task is ${t.status}; choose once its turn has ended`,
        );
      if (attempt.result === null)
        throw new PatchbayError('conflict', `attempt ${n} collected no patch to choose`, {
          details: { reason: 'no_workspace_result' },
        });
      const selection = t.result?.selection ?? null;
      const overruled =
        selection === null
          ? null
          : {
              ...selection,
              chosen: n,
              overruled:
                n === (selection.overruled?.ruleChose ?? selection.chosen)
                  ? null
                  : { at, ruleChose: selection.overruled?.ruleChose ?? selection.chosen },
            };
      return withCurrentTurn(
        {
          ...t,
          status: attempt.status,
          error: attempt.error,
          result: { ...attempt.result, selection: overruled },
        },
        (tu) => ({
          ...tu,
          status: attempt.status,
          error: attempt.error,
          result: attempt.changes,
          chosen: n,
        }),
      );
    });
    if (chosen === null)
      throw new PatchbayError(
        'conflict',
        'the task is running again; choose once its turn has ended',
      );
    return chosen;
  }

  /** Appends the turn's terminal status event (its log's last), drops secrets, archives the log. */
  async #closeTurn(task: Task): Promise<void> {
    await this.#events.append(task.id, statusEvent(task.status, task.phase, task.error));
    await this.#store.deleteSecrets(task.id);
    await this.#archive(task.id);
  }

  /**
   * An archive that fails (the artifact store is down) leaves the log in Redis without an expiry:
   * nothing is lost, reads go on from the stream, and the end already written stands.
   */
  async #archive(log: string): Promise<void> {
    await this.#events.archive(log).catch(() => undefined);
  }

  /**
   * Puts an ended task back in the queue with `prompt` as its next turn. Refuses (`conflict`) a
   * task that has not ended, a cancelled one, and one whose turns never left a workspace result
   * to go on from; `rate_limited` past the tenant's cap of active attempts.
   */
  async reopen(task: Task, prompt: string, options: { maxActive?: number } = {}): Promise<Task> {
    const createdAt = this.#now().toISOString();
    return this.#store.reopen(
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
          tries: 0,
          cancelRequested: false,
          turn,
          turns: [...turns, newTurn(t, turn, prompt, createdAt)],
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
  }
}

function statusEvent(status: TaskStatus, phase: Task['phase'], error: EndError | undefined) {
  return {
    type: 'status' as const,
    status,
    phase,
    ...(error == null ? {} : { error: { code: error.code, message: error.message } }),
  };
}

/** The task log's word that attempt `n` ended. */
function attemptEvent(task: Task, n: number, outcome: TaskOutcome) {
  return {
    type: 'attempt' as const,
    attempt: n,
    model: currentTurn(task).attempts.find((a) => a.n === n)?.model ?? '',
    status: outcome.status,
    ...(outcome.error === null ? {} : { error: outcome.error }),
  };
}

function endedAttempt(
  attempt: Attempt,
  outcome: TaskOutcome,
  finishedAt: string,
  phase: Task['phase'],
): Attempt {
  return {
    ...attempt,
    status: outcome.status,
    finishedAt,
    error: outcome.error === null ? null : { ...outcome.error, phase },
    result: outcome.result ?? attempt.result,
    changes: outcome.turnResult ?? attempt.changes,
  };
}

/**
 * Ends the current turn, every attempt of it ended: its result is the attempt the rule picks, and
 * the task takes that attempt's status and error; without any attempt's patch the turn fails with
 * the first failure (or is cancelled when every attempt was), keeping the task's earlier result.
 */
function endTurn(task: Task, finishedAt: string): Task {
  const attempts = currentTurn(task).attempts;
  const selection = selectAttempt(attempts);
  const chosen = selection === null ? undefined : attempts.find((a) => a.n === selection.chosen);
  const failure =
    attempts.find((a) => a.status === 'failed') ?? attempts.find((a) => a.status === 'cancelled');
  const status: EndStatus =
    chosen !== undefined
      ? (chosen.status as EndStatus)
      : attempts.every((a) => a.status === 'cancelled')
        ? 'cancelled'
        : 'failed';
  const error = chosen !== undefined ? chosen.error : (failure?.error ?? null);
  const result =
    chosen?.result == null
      ? task.result
      : task.attempts > 1
        ? { ...chosen.result, selection }
        : chosen.result;
  return withUsageTotals(
    withCurrentTurn({ ...task, status, finishedAt, error, result }, (turn) => ({
      ...turn,
      status,
      finishedAt,
      error,
      result: chosen?.changes ?? null,
      chosen: selection?.chosen ?? null,
    })),
  );
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
