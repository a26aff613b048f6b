import {
  type ErrorCode,
  type Logger,
  type PatchbayError,
  type Task,
  attemptLogId,
  currentTurn,
  isTerminal,
  retryPolicy,
  withAttempt,
  withCurrentTurn,
} from '@patchbay/core';
import type { SandboxProvider } from '@patchbay/sandbox';
import { TaskLifecycle, type ArtifactStore, type EventLog, type TaskStore } from '@patchbay/store';
import type { EnvironmentCache } from './environments.js';
import { EventWriter } from './event-writer.js';
import { SandboxKeeper } from './keeper.js';
import { agentPhase } from './phases/agent.js';
import { collectPhase } from './phases/collect.js';
import { fetchPhase } from './phases/fetch.js';
import { provisionPhase, resumeKept } from './phases/provision.js';
import { publishPhase } from './phases/publish.js';
import { setupPhase } from './phases/setup.js';
import { verifyPhase } from './phases/verify.js';
import type { AgentRunner, EgressAccess, RepoSource } from './ports.js';
import { TaskRun, type PhaseDeps } from './run.js';

export interface PipelineOptions {
  /** Largest patch accepted from a sandbox. @default 64 MiB */
  maxPatchBytes?: number;
  /** Output bytes of setup and verify logged per turn. @default 4 MiB */
  outputEventBytes?: number;
  /** Verify output kept in the task record. @default 64 KiB */
  verifyOutputBytes?: number;
  /** Operator switch: may a task that asks for it keep network in the agent phase. @default false */
  allowAgentNetwork?: boolean;
}

export interface PipelineDeps {
  store: TaskStore;
  events: EventLog;
  artifacts: ArtifactStore;
  sandboxes: SandboxProvider;
  repos: RepoSource;
  agent: AgentRunner;
  log: Logger;
  /** Sandboxes kept for follow-ups; none are kept without one. */
  keeper?: SandboxKeeper;
  /** This worker's name, recorded on the attempts it runs. */
  workerId?: string;
  /** Setup snapshots (see {@link EnvironmentCache}); setup always runs without one. */
  environments?: EnvironmentCache | undefined;
  /** The egress proxy of `network: allowlist` tasks. */
  egress?: EgressAccess | undefined;
  options?: PipelineOptions;
  /** @default () => new Date() */
  now?: () => Date;
}

export interface RunContext {
  /**
   * Aborted with `PatchbayError('cancelled')` when the task is cancelled, and with any other
   * reason when this worker shuts down: then the task is handed back, not ended.
   */
  signal: AbortSignal;
  /** 1 for the first try of the turn; more after a retry or a worker that died holding it. */
  try: number;
  /** Which of the turn's attempts to run. @default 1 */
  attempt?: number;
}

/** Thrown to the queue when a turn must run again elsewhere rather than end here. */
class HandBack extends Error {
  override readonly name = 'HandBack';
}

/**
 * The task pipeline: one turn of a task, as its phases. A first turn, or a follow-up whose kept
 * sandbox is gone, goes fetch → provision → setup; a follow-up whose sandbox was kept resumes in
 * it. Then agent → collect → verify → publish. Every way out ends the turn through the task's
 * lifecycle, or throws to the queue when {@link retryPolicy} says the turn runs again.
 */
export class Pipeline {
  readonly #deps: PhaseDeps;
  readonly #events: EventLog;
  readonly #workerId: string | null;

  constructor(deps: PipelineDeps) {
    this.#workerId = deps.workerId ?? null;
    const now = deps.now ?? (() => new Date());
    this.#events = deps.events;
    this.#deps = {
      store: deps.store,
      lifecycle: new TaskLifecycle({ store: deps.store, events: deps.events, now }),
      artifacts: deps.artifacts,
      sandboxes: deps.sandboxes,
      repos: deps.repos,
      agent: deps.agent,
      keeper: deps.keeper ?? new SandboxKeeper({ keepAliveMs: 0, maxKept: 0, log: deps.log }),
      log: deps.log,
      now,
      environments: deps.environments,
      egress: deps.egress,
      options: {
        maxPatchBytes: 64 * 1024 * 1024,
        outputEventBytes: 4 * 1024 * 1024,
        verifyOutputBytes: 64 * 1024,
        allowAgentNetwork: false,
        ...deps.options,
      },
    };
  }

  async run(taskId: string, context: RunContext): Promise<void> {
    const deps = this.#deps;
    const task = await deps.store.get(taskId);
    const attempt = context.attempt ?? 1;
    const mine =
      task === null ? undefined : currentTurn(task).attempts.find((a) => a.n === attempt);
    if (!task || isTerminal(task.status) || (mine !== undefined && isTerminal(mine.status))) return;
    const events = new EventWriter(this.#events, attemptLogId(task, task.turn, attempt));
    if (task.cancelRequested) {
      await this.#end(events, taskId, attempt, 'cancelled', {
        code: 'cancelled',
        message: 'cancelled before it started',
      });
      return;
    }
    const run = new TaskRun(task, deps, events, context);
    try {
      await this.#start(run);
      if (!(await resumeKept(run, deps))) {
        await fetchPhase(run, deps);
        await provisionPhase(run, deps);
        await setupPhase(run, deps);
      }
      await agentPhase(run, deps);
      await collectPhase(run, deps);
      await verifyPhase(run, deps);
      await publishPhase(run, deps);
    } catch (err) {
      await this.#failed(run, err);
    } finally {
      await run.close();
    }
  }

  /**
   * Ends an attempt whose job will not run again although no run ended it (its worker kept
   * dying), unless it already ended.
   */
  async abandon(taskId: string, attempt: number, error: PatchbayError): Promise<void> {
    // No run of this worker writes events for it any more: nothing to drain before ending it.
    await this.#deps.lifecycle.endAttempt(taskId, attempt, {
      status: 'failed',
      error: { code: error.code, message: error.message },
    });
  }

  async #start(run: TaskRun): Promise<void> {
    const startedAt = this.#deps.now().toISOString();
    const queued = run.task.status === 'queued';
    const task: Task = await run.update((t) =>
      withAttempt(
        withCurrentTurn(
          {
            ...t,
            status: 'running',
            startedAt: t.startedAt ?? startedAt,
            tries: Math.max(t.status === 'queued' ? 0 : t.tries, run.try),
            error: null,
          },
          (turn) => ({ ...turn, status: 'running', startedAt: turn.startedAt ?? startedAt }),
        ),
        run.attempt,
        (a) => ({
          ...a,
          status: 'running',
          startedAt: a.startedAt ?? startedAt,
          tries: run.try,
          worker: this.#workerId,
        }),
      ),
    );
    run.events.emit({ type: 'status', status: 'running', phase: task.phase });
    // With attempts of their own logs, the task's log says once that the turn runs.
    if (task.attempts > 1 && queued)
      await this.#events.append(task.id, { type: 'status', status: 'running', phase: null });
  }

  /** What the retry policy says becomes of a run that threw. */
  async #failed(run: TaskRun, err: unknown): Promise<void> {
    const { log } = this.#deps;
    const verdict = retryPolicy.judge(err, {
      try: run.try,
      stop: run.stop,
      timeoutSeconds: run.task.limits.timeoutSeconds,
    });
    const where = { err, taskId: run.id, turn: run.task.turn, try: run.try };
    switch (verdict.kind) {
      case 'end':
        if (verdict.error.code === 'internal_error')
          log.error(where, 'task failed with an unexpected error');
        await run.release();
        await this.#end(run.events, run.id, run.attempt, verdict.status, verdict.error);
        return;
      case 'retry':
        log.warn(where, 'task will be retried');
        await run.release();
        run.events.emit({
          type: 'error',
          code: verdict.error.code,
          message: `${verdict.error.message}; the task will be retried`,
          phase: run.task.phase,
        });
        await run.events.drain().catch(() => undefined);
        throw err;
      case 'hand-back':
        // Leave the task running-but-unowned for the queue to hand to another worker.
        run.events.emit({
          type: 'error',
          code: 'cancelled',
          message: 'worker shutting down; the task will be retried',
          phase: run.task.phase,
        });
        await run.events.drain().catch(() => undefined);
        throw new HandBack('worker shutting down', { cause: err });
    }
  }

  /** Ends the attempt through the task's lifecycle, after every event of the run is in its log. */
  async #end(
    events: EventWriter,
    taskId: string,
    attempt: number,
    status: 'succeeded' | 'failed' | 'cancelled',
    error: { code: ErrorCode; message: string } | null,
  ): Promise<void> {
    await events.drain();
    await this.#deps.lifecycle.endAttempt(taskId, attempt, { status, error });
  }
}
