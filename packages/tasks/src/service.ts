import { createHash, randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  type AgentRuntime,
  ARTIFACTS,
  EMPTY_USAGE,
  type Attempt,
  DEFAULT_CACHE_KEY,
  type Delivery,
  type DeliveryRequest,
  PatchbayError,
  type Task,
  attemptLogId,
  chosenAttempt,
  currentTurn,
  isTerminal,
  lastResultTurn,
  newTurn,
  patchArtifactOf,
  type TaskOrigin,
  type TaskSpec,
} from '@patchbay/core';
import {
  TaskLifecycle,
  type ArtifactStore,
  type EventLog,
  type TaskListQuery,
  type TaskPage,
  type TaskStore,
} from '@patchbay/store';

/** The queue as the service needs it. */
export interface TaskQueuePort {
  /** Queues the attempts of a turn of the task (a job per turn and attempt). */
  enqueue(taskId: string, turn: number, attempts: readonly number[]): Promise<void>;
  /** Removes an attempt's job that no worker has taken yet; false when it is active (or gone). */
  remove(taskId: string, turn: number, attempt: number): Promise<boolean>;
}

/** Where deliveries go: the worker's `deliveries` queue. */
export interface DeliveryQueuePort {
  enqueue(taskId: string): Promise<void>;
}

/** Reaches the worker running a task. */
export interface CancelPort {
  publish(taskId: string): Promise<void>;
}

/** Server-side defaults and ceilings for task specs. */
export interface TaskDefaults {
  image: string;
  model: string;
  timeoutSeconds: number;
  maxTurns: number;
  maxTokens: number;
  allowAgentNetwork: boolean;
  /** The agent runtimes this server offers; the first is the one a task gets when it names none. */
  runtimes: readonly AgentRuntime[];
  /** The names tasks may list in `allowDomains` (patterns); empty: no allowlist network. */
  egressDomains: readonly string[];
  /** Queued plus running attempts (sandboxes) one tenant may have. */
  maxActiveTasks: number;
  /** Most attempts one task may ask for. */
  maxAttempts: number;
}

export interface TaskServiceDeps {
  store: TaskStore;
  events: EventLog;
  artifacts: ArtifactStore;
  queue: TaskQueuePort;
  cancels: CancelPort;
  /** Resolves to the URL to fetch, or rejects with `repo_url_refused`. */
  checkRepoUrl: (url: string) => Promise<string>;
  /** Resolves to the URL to POST to, or rejects with `webhook_url_refused`. */
  checkWebhookUrl: (url: string) => Promise<string>;
  deliveries: DeliveryQueuePort;
  defaults: TaskDefaults;
  /** @default () => new Date() */
  now?: () => Date;
}

/** Task ids are UUIDs; anything else in a path is simply not found. */
const TASK_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Submitting, reading and cancelling tasks on behalf of a tenant. */
export class TaskService {
  readonly #deps: TaskServiceDeps;
  readonly #now: () => Date;
  readonly #lifecycle: TaskLifecycle;

  constructor(deps: TaskServiceDeps) {
    this.#deps = deps;
    this.#now = deps.now ?? (() => new Date());
    this.#lifecycle = new TaskLifecycle({ store: deps.store, events: deps.events, now: this.#now });
  }

  /** The agent runtimes tasks may ask for, the default (a task naming none) first. */
  runtimes(): readonly AgentRuntime[] {
    return this.#deps.defaults.runtimes;
  }

  /**
   * Validates policy, stores the task and queues it. With an idempotency key the tenant already
   * used within a day, nothing new starts: the earlier task is returned (`replayed`) when the spec
   * is the same, and `idempotency_key_reused` (422) is thrown when it is not.
   */
  async submit(
    tenant: string,
    spec: TaskSpec,
    options: { idempotencyKey?: string; origin?: TaskOrigin } = {},
  ): Promise<{ task: Task; replayed: boolean }> {
    const { defaults } = this.#deps;
    const environment = spec.environment ?? {};
    const limits = spec.limits ?? {};
    if (environment.network === 'on' && !defaults.allowAgentNetwork) {
      throw new PatchbayError(
        'policy_refused',
        'network in the agent phase is not allowed on this server',
        {
          details: { field: 'environment.network' },
        },
      );
    }
    const runtime = spec.agent?.runtime ?? defaults.runtimes[0] ?? 'patchbay';
    if (!defaults.runtimes.includes(runtime)) {
      throw new PatchbayError(
        'policy_refused',
        `the ${runtime} runtime is not offered on this server (offered: ${defaults.runtimes.join(', ')})`,
        { details: { field: 'agent.runtime', offered: defaults.runtimes } },
      );
    }
    if (environment.network === 'allowlist') checkAllowDomains(environment.allowDomains, defaults);
    if (limits.timeoutSeconds !== undefined && limits.timeoutSeconds > defaults.timeoutSeconds) {
      throw new PatchbayError(
        'policy_refused',
        `limits.timeoutSeconds may be at most ${defaults.timeoutSeconds} on this server`,
        { details: { field: 'limits.timeoutSeconds', max: defaults.timeoutSeconds } },
      );
    }
    const attempts = spec.attempts ?? spec.models?.length ?? 1;
    if (attempts > defaults.maxAttempts) {
      throw new PatchbayError(
        'policy_refused',
        `a task may run at most ${defaults.maxAttempts} attempts on this server`,
        {
          details: {
            field: spec.attempts === undefined ? 'models' : 'attempts',
            max: defaults.maxAttempts,
          },
        },
      );
    }
    const url = await this.#deps.checkRepoUrl(spec.repo.url);
    const notifyUrl =
      spec.notify === undefined ? null : await this.#deps.checkWebhookUrl(spec.notify.url);
    const createdAt = this.#now().toISOString();
    const id = randomUUID();
    const task: Task = {
      id,
      tenant,
      status: 'queued',
      phase: null,
      createdAt,
      startedAt: null,
      finishedAt: null,
      repo: { url, ref: spec.repo.ref ?? null },
      prompt: spec.prompt,
      environment: {
        image: environment.image ?? defaults.image,
        setup: environment.setup ?? null,
        verify: environment.verify ?? null,
        env: environment.env ?? {},
        secretNames: Object.keys(environment.secrets ?? {}),
        network: environment.network ?? 'none',
        allowDomains: environment.network === 'allowlist' ? (environment.allowDomains ?? []) : [],
        cacheKey: environment.cacheKey ?? [...DEFAULT_CACHE_KEY],
        setupAlways: environment.setupAlways ?? false,
        maintenance: environment.maintenance ?? null,
      },
      model: {
        name: spec.model?.name ?? defaults.model,
        reasoningEffort: spec.model?.reasoningEffort ?? null,
      },
      agent: { runtime },
      limits: {
        timeoutSeconds: limits.timeoutSeconds ?? defaults.timeoutSeconds,
        maxTurns: limits.maxTurns ?? defaults.maxTurns,
        maxTokens: limits.maxTokens ?? defaults.maxTokens,
      },
      baseCommit: null,
      result: null,
      usage: EMPTY_USAGE,
      error: null,
      tries: 0,
      attempts,
      models: spec.models ?? [],
      cancelRequested: false,
      turn: 1,
      turns: [],
      delivery:
        spec.delivery === undefined
          ? null
          : newDelivery(id, spec.delivery, null, 'requested', true),
      notify: notifyUrl === null ? null : { url: notifyUrl },
      timings: null,
      origin: options.origin ?? { kind: 'api' },
    };
    task.turns = [newTurn(task, 1, spec.prompt, createdAt)];
    if (spec.delivery?.token !== undefined)
      await this.#deps.store.putDeliveryToken(id, spec.delivery.token, DELIVERY_TOKEN_SECONDS);
    // The `queued` event is written with the record, so it is seq 1 and in place before the job
    // exists: a worker cannot take the task and log `running` ahead of it.
    const earlier = await this.#deps.store.create(task, {
      ...(environment.secrets ? { secrets: environment.secrets } : {}),
      maxActive: defaults.maxActiveTasks,
      firstEvent: { type: 'status', status: 'queued', phase: null },
      ...(options.idempotencyKey === undefined
        ? {}
        : { idempotency: { key: options.idempotencyKey, bodyHash: specHash(spec) } }),
    });
    if (earlier !== null) {
      if (!earlier.sameBody)
        throw new PatchbayError(
          'idempotency_key_reused',
          'this Idempotency-Key was used with another request body in the last 24 hours',
          { details: { taskId: earlier.replayOf } },
        );
      await this.#deps.store.deleteDeliveryToken(id);
      return { task: await this.get(tenant, earlier.replayOf), replayed: true };
    }
    await this.#enqueue(task);
    return { task, replayed: false };
  }

  /**
   * A follow-up turn on an ended task: it goes back to `queued` with `prompt` as its next turn,
   * continuing from the tree its last turn left. 409 (`conflict`) while it is queued or running,
   * when it was cancelled, or when no turn left a workspace result.
   */
  async followUp(tenant: string, id: string, prompt: string): Promise<Task> {
    const task = await this.get(tenant, id);
    const reopened = await this.#lifecycle.reopen(task, prompt, {
      maxActive: this.#deps.defaults.maxActiveTasks,
    });
    await this.#enqueue(reopened);
    return reopened;
  }

  /**
   * Delivers the task's result (its last turn's) to a branch, and opens a pull request when asked:
   * the delivery becomes `pending` and the worker's `deliveries` queue takes it. 409 (`conflict`)
   * unless the task succeeded with a patch, or while a delivery of it is under way.
   */
  async deliver(tenant: string, id: string, request: DeliveryRequest): Promise<Task> {
    const task = await this.get(tenant, id);
    if (task.status !== 'succeeded')
      throw new PatchbayError(
        'conflict',
        `only a task that succeeded is delivered (it is ${task.status})`,
        {
          details: { status: task.status },
        },
      );
    const turn = lastResultTurn(task);
    if (
      turn === null ||
      (task.turns[turn - 1]?.result?.patchBytes ?? task.result?.patchBytes ?? 0) === 0
    )
      throw new PatchbayError('conflict', 'the task changed nothing: there is nothing to deliver', {
        details: { reason: 'empty_patch' },
      });
    if (task.delivery?.status === 'pending')
      throw new PatchbayError('conflict', 'a delivery of this task is under way');
    if (request.token !== undefined)
      await this.#deps.store.putDeliveryToken(id, request.token, DELIVERY_TOKEN_SECONDS);
    const written = await this.#deps.store.rewriteEnded(id, (t) => {
      if (t.delivery?.status === 'pending')
        throw new PatchbayError('conflict', 'a delivery of this task is under way');
      return { ...t, delivery: newDelivery(id, request, t.delivery, 'pending', false, turn) };
    });
    if (written === null) throw new PatchbayError('conflict', 'the task went back to work');
    await this.#deps.deliveries.enqueue(id);
    return written;
  }

  async #enqueue(task: Task): Promise<void> {
    try {
      const attempts = currentTurn(task).attempts.map((a) => a.n);
      await this.#deps.queue.enqueue(task.id, task.turn, attempts);
    } catch (err) {
      // A record without a job would stay queued forever: end it, and say the service is down.
      await this.#lifecycle
        .end(task.id, {
          status: 'failed',
          error: { code: 'unavailable', message: 'the task could not be queued' },
        })
        .catch(() => undefined);
      throw new PatchbayError('unavailable', 'the task queue is unavailable', { cause: err });
    }
  }

  async get(tenant: string, id: string): Promise<Task> {
    const task = TASK_ID.test(id) ? await this.#deps.store.getForTenant(tenant, id) : null;
    if (!task) throw new PatchbayError('not_found', `no task ${JSON.stringify(id.slice(0, 64))}`);
    return task;
  }

  list(tenant: string, query: TaskListQuery): Promise<TaskPage> {
    return this.#deps.store.list(tenant, query);
  }

  /**
   * Cancels a queued or running task; a no-op on a finished one. A queued job is removed and the
   * task ends here; a running one is asked to stop through the cancel channel, and its worker ends it.
   */
  async cancel(tenant: string, id: string): Promise<Task> {
    const task = await this.get(tenant, id);
    if (isTerminal(task.status)) return task;
    await this.#deps.store.update(id, (t) =>
      t.cancelRequested ? null : { ...t, cancelRequested: true },
    );
    // Attempts no worker has taken end here; running ones are stopped through the cancel channel
    // and their workers end them. The last attempt to end ends the task.
    let running = false;
    for (const attempt of currentTurn(task).attempts) {
      if (isTerminal(attempt.status)) continue;
      if (attempt.status === 'queued' && (await this.#deps.queue.remove(id, task.turn, attempt.n)))
        await this.#lifecycle.endAttempt(id, attempt.n, {
          status: 'cancelled',
          error: { code: 'cancelled', message: 'cancelled before it started' },
        });
      else running = true;
    }
    if (running) await this.#deps.cancels.publish(id);
    return this.get(tenant, id);
  }

  /**
   * The task's cumulative patch against `baseCommit`, as of the last turn that collected one;
   * `patch_not_ready` until a turn has.
   */
  async patch(tenant: string, id: string): Promise<{ body: Readable; size: number }> {
    const name = patchArtifactOf(await this.get(tenant, id));
    if (name === null) throw new PatchbayError('patch_not_ready', 'the task has no patch yet');
    return this.#artifact(id, name, 'the task has no patch yet');
  }

  /** The attempts of the task's current turn (or of turn `turn`). */
  async attempts(
    tenant: string,
    id: string,
    turn?: number,
  ): Promise<{ turn: number; chosen: number | null; attempts: Attempt[] }> {
    const task = await this.get(tenant, id);
    const n = turn ?? task.turn;
    const found = n === task.turn ? currentTurn(task) : task.turns[n - 1];
    if (found === undefined) throw new PatchbayError('not_found', `the task has no turn ${n}`);
    return { turn: n, chosen: found.chosen, attempts: found.attempts };
  }

  /** The cumulative patch attempt `n` of the task's current turn collected. */
  async attemptPatch(
    tenant: string,
    id: string,
    n: number,
  ): Promise<{ body: Readable; size: number }> {
    const task = await this.get(tenant, id);
    const attempt = this.#attempt(task, n);
    const missing = `attempt ${n} has no patch (yet)`;
    if (attempt.result === null) throw new PatchbayError('patch_not_ready', missing);
    return this.#artifact(id, ARTIFACTS.turnPatch(task.turn, n), missing);
  }

  /** Where attempt `n` of the task's current turn logs, after checking it exists. */
  async attemptLog(tenant: string, id: string, n: number): Promise<string> {
    const task = await this.get(tenant, id);
    this.#attempt(task, n);
    return attemptLogId(task, task.turn, n);
  }

  /** Overrules the rule's choice: attempt `n` becomes the result of the task's last turn. */
  async choose(tenant: string, id: string, n: number): Promise<Task> {
    const task = await this.get(tenant, id);
    this.#attempt(task, n);
    return this.#lifecycle.choose(task, n);
  }

  #attempt(task: Task, n: number): Attempt {
    const attempt = currentTurn(task).attempts.find((a) => a.n === n);
    if (attempt === undefined)
      throw new PatchbayError('not_found', `the task's turn ${task.turn} has no attempt ${n}`);
    return attempt;
  }

  /** What turn `n` alone changed, against the tree it started from. */
  async turnPatch(
    tenant: string,
    id: string,
    n: number,
  ): Promise<{ body: Readable; size: number }> {
    const task = await this.get(tenant, id);
    const turn = task.turns[n - 1];
    if (turn === undefined) throw new PatchbayError('not_found', `the task has no turn ${n}`);
    if (turn.result === null)
      throw new PatchbayError('patch_not_ready', `turn ${n} has no patch (yet)`);
    return this.#artifact(
      id,
      ARTIFACTS.turnChanges(n, chosenAttempt(turn)),
      `turn ${n} has no patch (yet)`,
    );
  }

  async #artifact(
    id: string,
    name: string,
    missing: string,
  ): Promise<{ body: Readable; size: number }> {
    const found = await this.#deps.artifacts.get(id, name);
    if (found === null) throw new PatchbayError('patch_not_ready', missing);
    return found;
  }
}

/** A hash of a spec that does not depend on the order of its keys. */
function specHash(spec: TaskSpec): string {
  const canonical = (value: unknown): unknown =>
    Array.isArray(value)
      ? value.map(canonical)
      : value !== null && typeof value === 'object'
        ? Object.fromEntries(
            Object.keys(value)
              .sort()
              .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
          )
        : value;
  return createHash('sha256')
    .update(JSON.stringify(canonical(spec)))
    .digest('hex');
}

/** How long a task's own delivery token is kept at most. */
const DELIVERY_TOKEN_SECONDS = 7 * 86_400;

/**
 * A delivery as asked for. Delivering again to the branch of an earlier delivery carries on from
 * it (its commit and pull request); another branch starts afresh.
 */
function newDelivery(
  id: string,
  request: DeliveryRequest,
  earlier: Delivery | null,
  status: 'requested' | 'pending',
  auto: boolean,
  turn: number | null = null,
): Delivery {
  const branch = request.branch ?? earlier?.branch ?? `patchbay/${id}`;
  const same = earlier !== null && earlier.branch === branch;
  const pr = request.pullRequest;
  return {
    status,
    branch,
    auto: auto || (same && earlier.auto),
    request: {
      commitMessage: request.commitMessage ?? null,
      pullRequest:
        pr === undefined
          ? null
          : { title: pr.title ?? null, body: pr.body ?? null, draft: pr.draft ?? false },
    },
    turn,
    commit: same ? earlier.commit : null,
    pushedAt: same ? earlier.pushedAt : null,
    pullRequest: same ? earlier.pullRequest : null,
    error: null,
  };
}

/** A task's allowlist must name something, and only names within the operator's list. */
function checkAllowDomains(domains: readonly string[] | undefined, defaults: TaskDefaults): void {
  if (defaults.egressDomains.length === 0)
    throw new PatchbayError(
      'policy_refused',
      'an allowlist network is not offered on this server',
      {
        details: { field: 'environment.network' },
      },
    );
  if (domains === undefined || domains.length === 0)
    throw new PatchbayError('policy_refused', 'network allowlist needs environment.allowDomains', {
      details: { field: 'environment.allowDomains' },
    });
  const covered = (pattern: string): boolean =>
    defaults.egressDomains.some(
      (allowed) =>
        allowed === pattern || (allowed.startsWith('*.') && pattern.endsWith(allowed.slice(1))),
    );
  const outside = domains.filter((d) => !covered(d));
  if (outside.length > 0)
    throw new PatchbayError(
      'policy_refused',
      `not within this server's egress list: ${outside.join(', ')}`,
      { details: { field: 'environment.allowDomains', refused: outside } },
    );
}
