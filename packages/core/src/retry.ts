import { type ErrorCode, PatchbayError } from './errors.js';

/** Why a run was stopped from outside, if it was. */
export type RunStop = 'cancelled' | 'timeout' | 'shutdown' | null;

/** What becomes of a turn whose run threw. */
export type FailureVerdict =
  /** The turn ends here, with this status and error. */
  | { kind: 'end'; status: 'failed' | 'cancelled'; error: { code: ErrorCode; message: string } }
  /** The job is thrown back to the queue, which tries it again (`error` is logged as the reason). */
  | { kind: 'retry'; error: { code: ErrorCode; message: string } }
  /** The worker is going away: the job goes back to the queue as it is, without spending a try. */
  | { kind: 'hand-back' };

/**
 * The one retry policy of a task's turn: how many tries its job gets, which failures are tried
 * again, and when a task whose worker kept dying is given up as `worker_lost`. The queue takes its
 * numbers from here, the pipeline its verdicts, the worker its give-up error.
 */
export const retryPolicy = {
  /**
   * Tries of a turn's job when a run throws a retryable error (or an unexpected one). A crashed
   * worker's job comes back through stalled recovery instead, bounded by `maxStalled`.
   */
  tries: 3,
  /** First retry delay, doubled on each further try. */
  backoffMs: 5000,
  /** How many times a job may be found stalled (its worker died) before it is given up. */
  maxStalled: 2,

  /** Whether a try is the last: after it, an unexpected error ends the turn. */
  isFinal(tryNo: number): boolean {
    return tryNo >= this.tries;
  },

  /**
   * Judges a failed run: a stop from outside decides first (cancel, timeout, shutdown), then a
   * task-level error ends the turn unless it is retryable and tries are left, and anything
   * unexpected is retried while tries are left and ends as `internal_error` after the last.
   */
  judge(err: unknown, run: { try: number; stop: RunStop; timeoutSeconds: number }): FailureVerdict {
    if (run.stop === 'cancelled') {
      return {
        kind: 'end',
        status: 'cancelled',
        error: { code: 'cancelled', message: 'cancelled while running' },
      };
    }
    if (run.stop === 'timeout') {
      return {
        kind: 'end',
        status: 'failed',
        error: { code: 'timeout', message: `the task ran past its ${run.timeoutSeconds} s limit` },
      };
    }
    if (run.stop === 'shutdown') return { kind: 'hand-back' };
    const last = this.isFinal(run.try);
    if (err instanceof PatchbayError) {
      const error = { code: err.code, message: err.message };
      return err.retryable && !last
        ? { kind: 'retry', error }
        : { kind: 'end', status: 'failed', error };
    }
    return last
      ? {
          kind: 'end',
          status: 'failed',
          error: { code: 'internal_error', message: 'internal error' },
        }
      : { kind: 'retry', error: { code: 'internal_error', message: 'unexpected error' } };
  },

  /** The error of a task whose job will not run again although no run ended it. */
  workerLost(reason: string): PatchbayError {
    return new PatchbayError(
      'worker_lost',
      `its worker stopped before finishing it on every try (${reason})`,
    );
  },
} as const;
