import {
  ARTIFACTS,
  PatchbayError,
  currentTurn,
  withAttempt,
  withUsageTotals,
} from '@patchbay/core';
import { readArtifact } from '@patchbay/store';
import type { Reach, Sandbox } from '@patchbay/sandbox';
import type { EgressBlock } from '../ports.js';
import type { PhaseDeps, TaskRun } from '../run.js';

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
  // Ready: a client sees when the first tool call became possible while the agent runs.
  await run.recordTimings();
  const { task } = run;
  const history =
    run.from === null ? undefined : await conversationOf(run, deps, run.from, run.fromAttempt);
  const leave =
    task.environment.network === 'allowlist' ? await openEgress(run, deps, sandbox) : null;
  const outcome = await deps.agent
    .run({
      taskId: run.id,
      runtime: task.agent.runtime,
      sandbox,
      prompt: currentTurn(task).prompt,
      ...(history === undefined ? {} : { history }),
      model: { name: run.model, reasoningEffort: task.model.reasoningEffort },
      // The agent stops early enough for the patch so far to be collected and verified.
      limits: {
        maxTurns: task.limits.maxTurns,
        maxTokens: task.limits.maxTokens,
        deadline: run.deadline - reserveMs(task.limits.timeoutSeconds),
      },
      signal: run.signal,
      emit: run.events.emit,
    })
    .finally(() => leave?.());
  run.outcome = outcome;
  await run.update((t) =>
    withUsageTotals(withAttempt(t, run.attempt, (a) => ({ ...a, usage: outcome.usage }))),
  );
  const [n, a] = [task.turn, run.attempt];
  await Promise.all([
    deps.artifacts.put(task.id, ARTIFACTS.turnTranscript(n, a), JSON.stringify(outcome.transcript)),
    deps.artifacts.put(
      task.id,
      ARTIFACTS.turnConversation(n, a),
      JSON.stringify(outcome.conversation),
    ),
  ]);
}

/**
 * An allowlist network for the agent phase: the sandbox reaches the egress proxy (a loopback
 * port inside, whatever the engine), which lets its connections through to the task's domains
 * only (every refusal a `network.blocked` event), and every later command gets the proxy in its
 * environment. Loopback stays direct, so an agent's own model gateway is never proxied. Returns
 * what undoes it.
 */
async function openEgress(
  run: TaskRun,
  deps: PhaseDeps,
  sandbox: Sandbox,
): Promise<() => Promise<void>> {
  const { task } = run;
  if (deps.egress === undefined)
    throw new PatchbayError(
      'sandbox_error',
      'this worker has no egress proxy for allowlist networks',
    );
  const egress = await deps.egress.open();
  const admission = egress.admit({
    taskId: run.id,
    domains: task.environment.allowDomains,
    onBlocked: (block: EgressBlock) => run.events.emit({ type: 'network.blocked', ...block }),
  });
  let reach: Reach;
  try {
    reach = await sandbox.reach(admission.service, { signal: run.signal });
  } catch (err) {
    admission.release();
    throw err;
  }
  const proxy = reach.url;
  const direct = 'localhost,127.0.0.1,::1';
  sandbox.addEnv({
    HTTPS_PROXY: proxy,
    HTTP_PROXY: proxy,
    https_proxy: proxy,
    http_proxy: proxy,
    NO_PROXY: direct,
    no_proxy: direct,
  });
  return async () => {
    admission.release();
    await reach.release().catch((err: unknown) => {
      deps.log.warn({ err, taskId: run.id }, 'the way to the egress proxy did not close');
    });
  };
}

/** The conversation a turn left; an unreadable one is no context rather than a failed turn. */
async function conversationOf(
  run: TaskRun,
  deps: PhaseDeps,
  turn: number,
  attempt: number,
): Promise<unknown[]> {
  const raw = await readArtifact(deps.artifacts, run.id, ARTIFACTS.turnConversation(turn, attempt));
  try {
    const parsed: unknown = raw === null ? [] : JSON.parse(raw.toString('utf8'));
    return Array.isArray(parsed) ? (parsed as unknown[]) : [];
  } catch {
    deps.log.warn({ taskId: run.id, turn }, 'the conversation of an earlier turn does not parse');
    return [];
  }
}
