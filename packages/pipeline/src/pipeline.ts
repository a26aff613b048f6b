import {
  ARTIFACTS,
  type ErrorCode,
  type Logger,
  PatchbayError,
  type Task,
  type TaskPhase,
  type TaskResult,
  type VerifyResult,
  capText,
  isPatchbayError,
  isTerminal,
} from '@patchbay/core';
import type { Sandbox, SandboxProvider } from '@patchbay/sandbox';
import { TaskLifecycle, type ArtifactStore, type EventLog, type TaskStore } from '@patchbay/store';
import { collectPatch } from './collect.js';
import { EventWriter } from './event-writer.js';
import { OutputSink } from './output.js';
import type { AgentOutcome, AgentRunner, RepoSource } from './ports.js';

/** A structural logger (pino fits), so tests can pass their own. */
export interface PipelineOptions {
  /** Largest patch accepted from a sandbox. @default 64 MiB */
  maxPatchBytes?: number;
  /** Output bytes of setup and verify logged per task. @default 4 MiB */
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
  /** 1 for the first try; more after a worker died holding the task. */
  attempt: number;
  /** No try comes after this one: an unexpected error ends the task instead of retrying it. */
  finalAttempt: boolean;
}

/** Why a task's own controller was aborted. */
class Stop {
  constructor(readonly kind: 'cancelled' | 'timeout') {}
}

/** Turns the queue's abort reason into ours: a cancel ends the task, anything else hands it back. */
function stopFor(reason: unknown): unknown {
  return isPatchbayError(reason, 'cancelled') ? new Stop('cancelled') : reason;
}

/** Thrown to the queue when a task must be retried elsewhere rather than ended here. */
class HandBack extends Error {
  override readonly name = 'HandBack';
}

/**
 * The task pipeline: fetch → provision → setup → agent → collect → verify → publish, with the
 * sandbox removed on every way out (it is made during `fetch`, beside the fetch). Task-level
 * failures end the task with a stable code and do not throw; the pipeline throws only to hand a
 * task back to the queue (shutdown, or an unexpected error with tries left).
 */
export class Pipeline {
  readonly #deps: PipelineDeps;
  readonly #options: Required<PipelineOptions>;
  readonly #now: () => Date;
  readonly #lifecycle: TaskLifecycle;

  constructor(deps: PipelineDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#lifecycle = new TaskLifecycle({ store: deps.store, events: deps.events, now: this.#now });
    this.#options = {
      maxPatchBytes: 64 * 1024 * 1024,
      outputEventBytes: 4 * 1024 * 1024,
      verifyOutputBytes: 64 * 1024,
      allowAgentNetwork: false,
      ...deps.options,
    };
  }

  async run(taskId: string, context: RunContext): Promise<void> {
    const { store } = this.#deps;
    const existing = await store.get(taskId);
    if (!existing || isTerminal(existing.status)) return;
    const events = new EventWriter(this.#deps.events, taskId);
    if (existing.cancelRequested) {
      await this.#finish(existing, events, 'cancelled', {
        code: 'cancelled',
        message: 'cancelled before it started',
      });
      return;
    }

    const controller = new AbortController();
    const deadline = Date.now() + existing.limits.timeoutSeconds * 1000;
    const timer = setTimeout(
      () => controller.abort(new Stop('timeout')),
      existing.limits.timeoutSeconds * 1000,
    );
    const onAbort = (): void => controller.abort(stopFor(context.signal.reason));
    if (context.signal.aborted) onAbort();
    else context.signal.addEventListener('abort', onAbort, { once: true });
    const signal = controller.signal;
    const log = this.#deps.log;
    let task = existing;
    let sandbox: Sandbox | undefined;
    // The sandbox is made while the repository is fetched; on a way out before it is in hand,
    // its making is called off (and what it made removed) through this controller.
    const acquisition = new AbortController();
    const onStop = (): void => acquisition.abort(signal.reason);
    signal.addEventListener('abort', onStop, { once: true });
    let acquiring: Promise<Sandbox> | undefined;
    // The container goes before the task is marked finished, so that a finished task never
    // still holds one; `finally` repeats it for the paths that hand the task back.
    let removed: Promise<void> | undefined;
    const teardown = (): Promise<void> =>
      (removed ??= (async () => {
        if (sandbox === undefined && acquiring !== undefined) {
          acquisition.abort(new PatchbayError('cancelled', 'the sandbox is no longer needed'));
          sandbox = await acquiring.catch(() => undefined);
        }
        await sandbox?.destroy();
      })().catch((err: unknown) => log.warn({ err, taskId }, 'removing the sandbox failed')));
    const phase = async (name: TaskPhase): Promise<void> => {
      signal.throwIfAborted();
      task = (await store.update(taskId, (t) => ({ ...t, phase: name }))) ?? task;
      // A cancel published while this worker's subscriber was reconnecting is still seen here.
      if (task.cancelRequested) controller.abort(new Stop('cancelled'));
      signal.throwIfAborted();
      events.emit({ type: 'phase', phase: name, attempt: context.attempt });
    };

    try {
      task =
        (await store.update(taskId, (t) => ({
          ...t,
          status: 'running',
          startedAt: t.startedAt ?? this.#now().toISOString(),
          attempts: context.attempt,
          error: null,
        }))) ?? task;
      events.emit({ type: 'status', status: 'running', phase: task.phase });

      await phase('fetch');
      const setupNeedsNetwork = task.environment.setup !== null;
      const agentNetwork = task.environment.network === 'on' && this.#options.allowAgentNetwork;
      // Neither needs the other: the sandbox (from the pool, or a new container) is made while
      // the repository is fetched. The `fetch` phase covers both; `provision` waits for the
      // sandbox if it is not ready yet, then puts the tree in.
      acquiring = this.#deps.sandboxes.create(
        {
          image: task.environment.image,
          taskId,
          env: task.environment.env,
          network: setupNeedsNetwork || agentNetwork ? 'outbound' : 'none',
        },
        { signal: acquisition.signal },
      );
      // Its failure is seen where it is awaited; until then it must not count as unhandled.
      acquiring.catch(() => undefined);
      const base = await this.#deps.repos.resolve(task.repo.url, task.repo.ref, signal);
      task = (await store.update(taskId, (t) => ({ ...t, baseCommit: base }))) ?? task;

      await phase('provision');
      sandbox = await acquiring;
      await this.#deps.repos.checkout(sandbox, task.repo.url, base, signal);

      const budget = { remaining: this.#options.outputEventBytes };
      if (task.environment.setup !== null) {
        await phase('setup');
        const secrets = await store.secrets(taskId);
        const sink = new OutputSink({
          phase: 'setup',
          emit: events.emit,
          secrets: Object.values(secrets),
          budget,
        });
        const result = await sandbox.exec(task.environment.setup, {
          env: { ...task.environment.env, ...secrets },
          timeoutMs: Math.max(1000, deadline - Date.now()),
          signal,
          onOutput: sink.write,
        });
        sink.end();
        events.emit({
          type: 'command',
          phase: 'setup',
          command: task.environment.setup,
          exitCode: result.exitCode,
          durationMs: result.durationMs,
          ...(result.timedOut ? { timedOut: true } : {}),
        });
        signal.throwIfAborted();
        if (result.exitCode !== 0) {
          const tail = sink.mask(result.output.toString('utf8')).slice(-2000);
          throw new PatchbayError(
            'setup_failed',
            result.timedOut
              ? 'setup ran out of time'
              : `setup exited with ${result.exitCode ?? result.signal}: ${tail}`,
          );
        }
      }
      if (!agentNetwork && setupNeedsNetwork) await sandbox.disableNetwork();

      await phase('agent');
      const outcome: AgentOutcome = await this.#deps.agent.run({
        sandbox,
        prompt: task.prompt,
        model: task.model,
        // The agent stops early enough for the patch so far to be collected and verified.
        limits: {
          maxTurns: task.limits.maxTurns,
          maxTokens: task.limits.maxTokens,
          deadline: deadline - Math.min(120_000, task.limits.timeoutSeconds * 100),
        },
        signal,
        emit: events.emit,
      });
      await store.update(taskId, (t) => ({ ...t, usage: outcome.usage }));
      await this.#deps.artifacts.put(
        taskId,
        ARTIFACTS.transcript,
        JSON.stringify(outcome.transcript),
      );

      await phase('collect');
      const collected = await collectPatch(sandbox, base, {
        maxBytes: this.#options.maxPatchBytes,
        signal,
        restoreBase: (target, path, stop) =>
          this.#deps.repos.checkout(target, task.repo.url, base, stop, path),
      });
      await this.#deps.artifacts.put(taskId, ARTIFACTS.patch, collected.patch);

      let verify: VerifyResult | null = null;
      if (task.environment.verify !== null && outcome.stopReason !== 'timeout') {
        await phase('verify');
        // Collecting quiesced the sandbox already; nothing has run since.
        const sink = new OutputSink({ phase: 'verify', emit: events.emit, budget });
        const result = await sandbox.exec(task.environment.verify, {
          env: task.environment.env,
          timeoutMs: Math.max(1000, deadline - Date.now()),
          signal,
          onOutput: sink.write,
        });
        sink.end();
        signal.throwIfAborted();
        verify = {
          command: task.environment.verify,
          exitCode: result.exitCode,
          passed: result.exitCode === 0,
          output: capText(result.output.toString('utf8'), this.#options.verifyOutputBytes).text,
          durationMs: result.durationMs,
        };
        events.emit({
          type: 'command',
          phase: 'verify',
          command: task.environment.verify,
          exitCode: result.exitCode,
          durationMs: result.durationMs,
          ...(result.timedOut ? { timedOut: true } : {}),
        });
      }

      await phase('publish');
      const result: TaskResult = {
        summary: outcome.summary,
        files: collected.files,
        additions: collected.additions,
        deletions: collected.deletions,
        patchBytes: collected.patch.length,
        verify,
        stopReason: outcome.stopReason,
      };
      const failure = outcomeFailure(outcome, verify);
      await teardown();
      if (failure) await this.#finish(task, events, 'failed', failure, result);
      else await this.#finish(task, events, 'succeeded', null, result);
    } catch (err) {
      const reason: unknown = signal.aborted ? signal.reason : undefined;
      if (reason instanceof Stop) {
        const error =
          reason.kind === 'cancelled'
            ? { code: 'cancelled' as const, message: 'cancelled while running' }
            : {
                code: 'timeout' as const,
                message: `the task ran past its ${task.limits.timeoutSeconds} s limit`,
              };
        await teardown();
        await this.#finish(
          task,
          events,
          reason.kind === 'cancelled' ? 'cancelled' : 'failed',
          error,
        );
      } else if (signal.aborted) {
        // Shutting down: leave the task running-but-unowned for the queue to hand to another worker.
        events.emit({
          type: 'error',
          code: 'cancelled',
          message: 'worker shutting down; the task will be retried',
          phase: task.phase,
        });
        await events.drain().catch(() => undefined);
        throw new HandBack('worker shutting down', { cause: err });
      } else if (err instanceof PatchbayError && err.retryable && !context.finalAttempt) {
        log.warn({ err, taskId, attempt: context.attempt }, 'task will be retried');
        await teardown();
        events.emit({
          type: 'error',
          code: err.code,
          message: `${err.message}; the task will be retried`,
          phase: task.phase,
        });
        await events.drain().catch(() => undefined);
        throw err;
      } else if (err instanceof PatchbayError) {
        await teardown();
        await this.#finish(task, events, 'failed', { code: err.code, message: err.message });
      } else if (!context.finalAttempt) {
        log.warn(
          { err, taskId, attempt: context.attempt },
          'task hit an unexpected error; it will be retried',
        );
        events.emit({
          type: 'error',
          code: 'internal_error',
          message: 'unexpected error; retrying',
          phase: task.phase,
        });
        await events.drain().catch(() => undefined);
        throw err;
      } else {
        log.error({ err, taskId }, 'task failed with an unexpected error');
        await teardown();
        await this.#finish(task, events, 'failed', {
          code: 'internal_error',
          message: 'internal error',
        });
      }
    } finally {
      clearTimeout(timer);
      context.signal.removeEventListener('abort', onAbort);
      signal.removeEventListener('abort', onStop);
      await teardown();
    }
  }

  /**
   * Ends a task that will not run again (its job failed for good without the pipeline finishing
   * it, e.g. its worker kept dying), unless it already ended.
   */
  async abandon(taskId: string, error: PatchbayError): Promise<void> {
    // No run of this worker writes events for it any more: nothing to drain before ending it.
    // An unknown or already ended task is left as it is.
    await this.#lifecycle.end(taskId, {
      status: 'failed',
      error: { code: error.code, message: error.message },
    });
  }

  /** Ends the task through its one owner, after every event of the run is in the log. */
  async #finish(
    task: Task,
    events: EventWriter,
    status: 'succeeded' | 'failed' | 'cancelled',
    error: { code: ErrorCode; message: string } | null,
    result: TaskResult | null = null,
  ): Promise<void> {
    await events.drain();
    await this.#lifecycle.end(task.id, { status, error, result });
  }
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
