import {
  ARTIFACTS,
  EMPTY_USAGE,
  PatchbayError,
  addUsage,
  currentTurn,
  withCurrentTurn,
} from '@patchbay/core';
import type { PhaseDeps, TaskRun } from '../run.js';
import { readArtifact } from './provision.js';

/** How much of the turn's time is left for collect and verify after the agent stops. */
function reserveMs(timeoutSeconds: number): number {
  return Math.min(120_000, timeoutSeconds * 100);
}

/**
 * agent: the agent loop on the sandbox with the turn's prompt and, from turn 2 on, the
 * conversation the last turn left as its context. Its usage goes on the turn and the task, its
 * transcript and conversation into the artifact store.
 */
export async function agentPhase(run: TaskRun, deps: PhaseDeps): Promise<void> {
  const { sandbox } = run;
  if (sandbox === undefined) throw new PatchbayError('internal_error', 'agent needs a sandbox');
  await run.phase('agent');
  const { task } = run;
  const history = run.from === null ? undefined : await conversationOf(run, deps, run.from);
  const outcome = await deps.agent.run({
    sandbox,
    prompt: currentTurn(task).prompt,
    ...(history === undefined ? {} : { history }),
    model: task.model,
    // The agent stops early enough for the patch so far to be collected and verified.
    limits: {
      maxTurns: task.limits.maxTurns,
      maxTokens: task.limits.maxTokens,
      deadline: run.deadline - reserveMs(task.limits.timeoutSeconds),
    },
    signal: run.signal,
    emit: run.events.emit,
  });
  run.outcome = outcome;
  await run.update((t) => {
    const next = withCurrentTurn(t, (turn) => ({ ...turn, usage: outcome.usage }));
    return {
      ...next,
      usage: next.turns.reduce((sum, turn) => addUsage(sum, turn.usage), EMPTY_USAGE),
    };
  });
  const n = task.turn;
  await Promise.all([
    deps.artifacts.put(task.id, ARTIFACTS.turnTranscript(n), JSON.stringify(outcome.transcript)),
    deps.artifacts.put(
      task.id,
      ARTIFACTS.turnConversation(n),
      JSON.stringify(outcome.conversation),
    ),
  ]);
}

/** The conversation a turn left; an unreadable one is no context rather than a failed turn. */
async function conversationOf(run: TaskRun, deps: PhaseDeps, turn: number): Promise<unknown[]> {
  const raw = await readArtifact(deps.artifacts, run.id, ARTIFACTS.turnConversation(turn));
  try {
    const parsed: unknown = raw === null ? [] : JSON.parse(raw.toString('utf8'));
    return Array.isArray(parsed) ? (parsed as unknown[]) : [];
  } catch {
    deps.log.warn({ taskId: run.id, turn }, 'the conversation of an earlier turn does not parse');
    return [];
  }
}
