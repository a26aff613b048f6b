import { type ErrorCode, PatchbayError, type VerifyResult } from '@patchbay/core';
import type { AgentOutcome } from '../ports.js';
import type { PhaseDeps, TaskRun } from '../run.js';

/**
 * publish: the turn's result on the record, and its end. The sandbox is kept for a follow-up
 * (or removed) before the task is marked ended, so that an ended task never holds one it does
 * not account for, and a quick follow-up finds it kept.
 */
export async function publishPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  const { outcome, collected } = run;
  if (outcome === undefined || collected === undefined)
    throw new PatchbayError('internal_error', 'publish needs the agent outcome and the patch');
  await run.phase('publish');
  await run.recordTimings();
  const { patch, changes } = collected;
  const stopReason = outcome.stopReason;
  const failure = outcomeFailure(outcome, run.verify);
  await run.release(true);
  await run.events.drain();
  await deps.lifecycle.endAttempt(run.id, run.attempt, {
    status: failure === null ? 'succeeded' : 'failed',
    error: failure,
    result: {
      summary: outcome.summary,
      files: patch.files,
      additions: patch.additions,
      deletions: patch.deletions,
      patchBytes: patch.patch.length,
      verify: run.verify,
      stopReason,
    },
    turnResult: {
      summary: outcome.summary,
      files: changes.files,
      additions: changes.additions,
      deletions: changes.deletions,
      patchBytes: changes.patch.length,
      verify: run.verify,
      stopReason,
    },
  });
}

/** A finished run that still counts as failed: a budget ran out, or the repository's tests failed. */
function outcomeFailure(
  outcome: AgentOutcome,
  verify: VerifyResult | null,
): { code: ErrorCode; message: string } | null {
  switch (outcome.stopReason) {
    case 'completed':
      break;
    case 'timeout':
      return {
        code: 'timeout',
        message: 'the agent ran out of time; the patch so far was collected',
      };
    case 'max_turns':
    case 'max_tokens':
      return {
        code: 'budget_exhausted',
        message: `the agent's ${outcome.stopReason === 'max_turns' ? 'turn' : 'token'} budget ran out; the patch so far was collected`,
      };
  }
  if (verify && !verify.passed) {
    return {
      code: 'verify_failed',
      message: `verify exited with ${verify.exitCode ?? 'a signal'}`,
    };
  }
  return null;
}
