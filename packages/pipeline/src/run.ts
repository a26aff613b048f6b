import {
  ARTIFACTS,
  type Logger,
  PatchbayError,
  type RunStop,
  type Task,
  type TaskPhase,
  type Timings,
  type VerifyResult,
  chosenAttempt,
  currentTurn,
  isPatchbayError,
  lastResultTurn,
  modelOfAttempt,
  withAttempt,
  withCurrentTurn,
} from '@patchbay/core';
import type { Sandbox, SandboxProvider } from '@patchbay/sandbox';
import {
  readArtifact,
  type ArtifactStore,
  type TaskLifecycle,
  type TaskStore,
} from '@patchbay/store';
import type { CollectedPatch } from './collect.js';
import type { EnvironmentCache } from './environments.js';
import { type EventWriter } from './event-writer.js';
import type { SandboxKeeper } from './keeper.js';
import type { AgentOutcome, AgentRunner, EgressAccess, RepoSource } from './ports.js';

/** Operator options of the pipeline, defaults filled in. */
export interface ResolvedPipelineOptions {
  maxPatchBytes: number;
  outputEventBytes: number;
  verifyOutputBytes: number;
  allowAgentNetwork: boolean;
}

/** What the phases share: the collaborators of the pipeline. */
export interface PhaseDeps {
  store: TaskStore;
  lifecycle: TaskLifecycle;
  artifacts: ArtifactStore;
  sandboxes: SandboxProvider;
  repos: RepoSource;
  agent: AgentRunner;
  keeper: SandboxKeeper;
  log: Logger;
  options: ResolvedPipelineOptions;
  now: () => Date;
  /** Setup snapshots; none are taken or used without one. */
  environments: EnvironmentCache | undefined;
  /** The egress proxy of `network: allowlist` tasks; such tasks fail without one. */
  egress: EgressAccess | undefined;
}

/** Why a run's own controller was aborted. */
class Stop {
  constructor(readonly kind: 'cancelled' | 'timeout') {}
}

/**
 * One run of a task's turn: the record as it stands, the sandbox, and what each phase leaves for
 * the next. The run owns its abort signal (cancel, timeout, and the worker's own shutdown) and
 * its sandbox, which it removes on every way out unless the turn ended well enough to keep it for
 * a follow-up.
 */
export class TaskRun {
  readonly id: string;
  readonly events: EventWriter;
  readonly signal: AbortSignal;
  /** Epoch ms at which the turn runs out of time. */
  readonly deadline: number;
  /** Output bytes of setup and verify still to be logged this turn. */
  readonly budget: { remaining: number };
  /** Which try of the run this is. */
  readonly try: number;
  /** Which of the turn's attempts this run is (1 unless the task runs several). */
  readonly attempt: number;
  /** The model this attempt uses. */
  readonly model: string;
  task: Task;
  /** The commit the task is based on, once fetched (the record's own from turn 2 on). */
  base: string | null;
  /** The turn whose tree this one continues from; null for turn 1. */
  readonly from: number | null;
  /** The attempt of turn `from` that was chosen: its tree, conversation and sandbox go on. */
  readonly fromAttempt: number;
  /** The sandbox in hand, once provisioned. */
  sandbox: Sandbox | undefined;
  /** The sandbox being made while the repository is fetched. */
  acquiring: Promise<Sandbox> | undefined;
  /** The turn went on in the sandbox the previous turn left. */
  warm = false;
  outcome: AgentOutcome | undefined;
  /** The cumulative patch and, from turn 2 on, what this turn alone changed. */
  collected: { patch: CollectedPatch; changes: CollectedPatch } | undefined;
  verify: VerifyResult | null = null;
  /** Setup was skipped for a cached environment (null: no setup, or not got that far). */
  setupCached: boolean | null = null;
  /** Provision found the base commit already checked out in a pooled sandbox. */
  workspacePreloaded: boolean | null = null;
  /** When the run started (ms), and each phase it entered, in order. */
  readonly #startedAt = Date.now();
  readonly #phases: [TaskPhase, number][] = [];

  readonly #deps: PhaseDeps;
  #previousPatch: Promise<Buffer> | undefined;
  readonly #controller = new AbortController();
  readonly #acquisition = new AbortController();
  readonly #timer: NodeJS.Timeout;
  readonly #outer: AbortSignal;
  readonly #onOuterAbort: () => void;
  #released: Promise<void> | undefined;

  constructor(
    task: Task,
    deps: PhaseDeps,
    events: EventWriter,
    context: { signal: AbortSignal; try: number; attempt?: number },
  ) {
    this.task = task;
    this.id = task.id;
    this.#deps = deps;
    this.events = events;
    this.try = context.try;
    this.attempt = context.attempt ?? 1;
    this.model = modelOfAttempt(task, this.attempt);
    this.base = task.turn > 1 ? task.baseCommit : null;
    this.from = task.turn > 1 ? lastResultTurn(task) : null;
    const source = this.from === null ? undefined : task.turns[this.from - 1];
    this.fromAttempt = source === undefined ? 1 : chosenAttempt(source);
    this.budget = { remaining: deps.options.outputEventBytes };
    this.signal = this.#controller.signal;
    this.deadline = Date.now() + task.limits.timeoutSeconds * 1000;
    this.#timer = setTimeout(
      () => this.#controller.abort(new Stop('timeout')),
      task.limits.timeoutSeconds * 1000,
    );
    this.#outer = context.signal;
    // The queue's reason becomes ours: a cancel ends the turn, anything else hands it back.
    this.#onOuterAbort = () =>
      this.#controller.abort(
        isPatchbayError(context.signal.reason, 'cancelled')
          ? new Stop('cancelled')
          : context.signal.reason,
      );
    if (context.signal.aborted) this.#onOuterAbort();
    else context.signal.addEventListener('abort', this.#onOuterAbort, { once: true });
    // A sandbox still being made when the run stops is called off.
    this.signal.addEventListener('abort', () => this.#acquisition.abort(this.signal.reason), {
      once: true,
    });
  }

  /** Signal of the sandbox's making: aborted when the run stops or no longer needs it. */
  get acquisitionSignal(): AbortSignal {
    return this.#acquisition.signal;
  }

  /** Why the run was stopped from outside, if it was. */
  get stop(): RunStop {
    if (!this.signal.aborted) return null;
    const reason: unknown = this.signal.reason;
    return reason instanceof Stop ? reason.kind : 'shutdown';
  }

  /**
   * The task's cumulative patch as turn `from` left it (its chosen attempt's): the tree this turn
   * starts from. Read from the artifact store once per run (provision and collect both use it).
   */
  previousPatch(): Promise<Buffer> {
    const from = this.from;
    if (from === null)
      return Promise.reject(new PatchbayError('internal_error', 'turn 1 has no previous patch'));
    this.#previousPatch ??= readArtifact(
      this.#deps.artifacts,
      this.id,
      ARTIFACTS.turnPatch(from, this.fromAttempt),
    ).then((patch) => {
      if (patch === null)
        throw new PatchbayError('internal_error', `the patch of turn ${from} is missing`);
      return patch;
    });
    return this.#previousPatch;
  }

  /** Changes the record (through the store) and keeps the run's copy in step. */
  async update(change: (task: Task) => Task): Promise<Task> {
    this.task = (await this.#deps.store.update(this.id, change)) ?? this.task;
    return this.task;
  }

  /**
   * Enters a phase: recorded, logged, and a cancel that slipped past the channel is seen here.
   * A follow-up's `provision` says whether the turn goes on warm.
   */
  async phase(name: TaskPhase, facts: { warm?: boolean } = {}): Promise<void> {
    this.signal.throwIfAborted();
    await this.update((t) => ({ ...t, phase: name }));
    if (this.task.cancelRequested) this.#controller.abort(new Stop('cancelled'));
    this.signal.throwIfAborted();
    this.#phases.push([name, Date.now()]);
    this.events.emit({ type: 'phase', phase: name, try: this.try, ...facts });
  }

  /** Where the run's time went so far: each phase lasts until the next one starts. */
  timings(): Timings {
    const span = (phase: TaskPhase): number | null => {
      const i = this.#phases.findIndex(([name]) => name === phase);
      if (i < 0) return null;
      return (this.#phases[i + 1]?.[1] ?? Date.now()) - this.#phases[i]![1];
    };
    const agent = this.#phases.find(([name]) => name === 'agent');
    const queuedSince = Date.parse(currentTurn(this.task).createdAt);
    return {
      queuedMs: Math.max(0, this.#startedAt - queuedSince),
      fetchMs: span('fetch'),
      provisionMs: span('provision'),
      setupMs: span('setup'),
      setupCached: this.setupCached,
      workspacePreloaded: this.workspacePreloaded,
      agentMs: span('agent'),
      verifyMs: span('verify'),
      readyAt: agent === undefined ? null : new Date(agent[1]).toISOString(),
    };
  }

  /**
   * Puts the run's timings on its attempt; the first attempt's are also the turn's and the
   * task's (the record's `timings`).
   */
  async recordTimings(): Promise<void> {
    const timings = this.timings();
    await this.update((t) => {
      const next = withAttempt(t, this.attempt, (a) => ({ ...a, timings }));
      if (this.attempt !== 1) return next;
      return { ...withCurrentTurn(next, (turn) => ({ ...turn, timings })), timings };
    });
  }

  /**
   * Lets go of the sandbox: kept for a follow-up when `keep` and the keeper takes it, removed
   * otherwise. Once per run; later calls return the first one's promise.
   */
  release(keep = false): Promise<void> {
    this.#released ??= (async () => {
      if (this.sandbox === undefined && this.acquiring !== undefined) {
        this.#acquisition.abort(new PatchbayError('cancelled', 'the sandbox is no longer needed'));
        this.sandbox = await this.acquiring.catch(() => undefined);
      }
      const sandbox = this.sandbox;
      if (sandbox === undefined) return;
      if (
        keep &&
        !sandbox.broken &&
        (await this.#deps.keeper.keep(this.id, this.task.turn, this.attempt, sandbox))
      )
        return;
      await sandbox.destroy();
    })().catch((err: unknown) =>
      this.#deps.log.warn({ err, taskId: this.id }, 'removing the sandbox failed'),
    );
    return this.#released;
  }

  /** Ends the run's timers and listeners, and the sandbox if nothing let go of it yet. */
  async close(): Promise<void> {
    clearTimeout(this.#timer);
    this.#outer.removeEventListener('abort', this.#onOuterAbort);
    await this.release();
  }
}
