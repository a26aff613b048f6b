import { type Logger, silentLogger, toView } from '@patchbay/core';
import type { JobQueue } from '@patchbay/queue';
import type { OutboxEntry, TaskStore } from '@patchbay/store';
import { DeliveryChains, deliveryIdOf, type PendingDelivery } from './chains.js';
import { notifyTargetId, type WebhookRegistry } from './registry.js';
import { signatureHeaders } from './signature.js';
import { postJson } from './sender.js';
import type { WebhookUrlPolicy } from './url-policy.js';

/** The job of a chain's head. */
export interface WebhookJob {
  chain: string;
  deliveryId: string;
}

/** What a receiver gets: the event, and the task as it was when the event was dispatched. */
export interface WebhookPayload {
  /** The delivery id (also `Patchbay-Delivery`): the same on every retry of this delivery. */
  id: string;
  type: string;
  /** The outbox entry id: increases with every event, so a task's events sort by it. */
  sequence: string;
  createdAt: string;
  taskId: string;
  turn: number;
  errorCode: string | null;
  task: unknown;
}

export interface WebhookDeps {
  store: TaskStore;
  registry: WebhookRegistry;
  chains: DeliveryChains;
  queue: JobQueue<WebhookJob>;
  log?: Logger;
}

/**
 * Reads a lifecycle event off the outbox and queues one delivery per target that wants it: the
 * tenant's webhooks, and the task's own `notify` URL.
 */
export class WebhookDispatcher {
  readonly #d: WebhookDeps;

  constructor(deps: WebhookDeps) {
    this.#d = deps;
  }

  async dispatch({ id, event }: OutboxEntry): Promise<void> {
    const { registry, chains, queue } = this.#d;
    const task = await this.#d.store.get(event.taskId);
    const targets = await registry.subscribers(event.tenant, event.type);
    if (task?.notify) {
      targets.push({
        id: notifyTargetId(task.id),
        url: task.notify.url,
        secrets: await registry.notifySecrets(event.tenant),
      });
    }
    for (const target of targets) {
      const deliveryId = deliveryIdOf(id, target.id);
      const payload: WebhookPayload = {
        id: deliveryId,
        type: event.type,
        sequence: id,
        createdAt: event.at,
        taskId: event.taskId,
        turn: event.turn,
        errorCode: event.errorCode,
        task: task === null ? null : toView(task),
      };
      const pending: PendingDelivery = {
        deliveryId,
        targetId: target.id,
        taskId: event.taskId,
        type: event.type,
        body: JSON.stringify(payload),
        queuedAt: Date.now(),
      };
      if (await chains.push(pending))
        await queue.add(deliveryId, { chain: DeliveryChains.chainOf(pending), deliveryId });
    }
  }
}

export interface CourierOptions {
  policy: WebhookUrlPolicy;
  /** How long a delivery is retried before it is given up. */
  retryMs: number;
  timeoutMs: number;
  /** The task's `notify` URL and the tenant's secrets, for notify targets. */
  notifyTarget: (taskId: string) => Promise<{ url: string; secrets: string[] } | null>;
}

/**
 * Sends a chain's head: signs it, POSTs it (DNS pinned, no redirects), logs the try, and on
 * success, or when it is out of time, moves the chain on and starts its next head's job. A
 * failure within the retry window throws, and the queue runs it again after its backoff. A
 * receiver answering 410 Gone is not tried again: a webhook is disabled, a task's `notify`
 * delivery given up.
 */
export class WebhookCourier {
  readonly #d: WebhookDeps;
  readonly #o: CourierOptions;
  readonly #log: Logger;

  constructor(deps: WebhookDeps, options: CourierOptions) {
    this.#d = deps;
    this.#o = options;
    this.#log = deps.log ?? silentLogger;
  }

  async send(job: WebhookJob, attemptsMade: number): Promise<void> {
    const head = await this.#d.chains.head(job.chain);
    // A job whose delivery is no longer the head (done already): nothing to do.
    if (head === null || head.deliveryId !== job.deliveryId) return;
    const target = head.targetId.startsWith('notify_')
      ? await this.#o.notifyTarget(head.taskId)
      : await this.#d.registry.target(head.targetId);
    const attempt = attemptsMade + 1;
    const entry = (
      outcome: 'delivered' | 'retrying' | 'gave_up',
      rest: { statusCode: number | null; error: string | null; durationMs: number },
    ) =>
      this.#d.registry.record(head.targetId, {
        deliveryId: head.deliveryId,
        event: head.type as never,
        taskId: head.taskId,
        attempt,
        outcome,
        ...rest,
        at: new Date().toISOString(),
      });
    if (target === null) {
      await this.#next(job.chain, head);
      return;
    }
    let outcome;
    try {
      const checked = await this.#o.policy.check(target.url);
      outcome = await postJson(
        checked,
        head.body,
        {
          'patchbay-event': head.type,
          'patchbay-delivery': head.deliveryId,
          ...signatureHeaders(target.secrets, head.deliveryId, head.body),
        },
        this.#o.timeoutMs,
      );
    } catch (err) {
      // The URL is refused now (its name resolves somewhere private since it was registered).
      outcome = { ok: false, statusCode: null, error: (err as Error).message, durationMs: 0 };
    }
    if (outcome.ok) {
      await entry('delivered', outcome);
      await this.#next(job.chain, head);
      return;
    }
    if (outcome.statusCode === 410) {
      await entry('gave_up', outcome);
      if (!head.targetId.startsWith('notify_')) {
        await this.#d.registry.disable(head.targetId, 'the receiver answered 410 Gone');
        this.#log.warn({ target: head.targetId }, 'webhook disabled: its receiver answered 410');
      }
      await this.#next(job.chain, head);
      return;
    }
    if (Date.now() - head.queuedAt >= this.#o.retryMs) {
      await entry('gave_up', outcome);
      this.#log.warn(
        { deliveryId: head.deliveryId, target: head.targetId },
        'webhook delivery given up',
      );
      await this.#next(job.chain, head);
      return;
    }
    await entry('retrying', outcome);
    throw new Error(`webhook delivery ${head.deliveryId} failed: ${outcome.error ?? 'error'}`);
  }

  /**
   * Starts the head job of every chain waiting: after a crash between moving a chain on and
   * starting its next job, nothing else would (an existing job of the same id is left as it is).
   */
  async sweep(): Promise<void> {
    for (const chain of await this.#d.chains.chains()) {
      const head = await this.#d.chains.head(chain);
      if (head === null) await this.#d.chains.advance(chain, '');
      else await this.#d.queue.add(head.deliveryId, { chain, deliveryId: head.deliveryId });
    }
  }

  async #next(chain: string, head: PendingDelivery): Promise<void> {
    const next = await this.#d.chains.advance(chain, head.deliveryId);
    if (next) await this.#d.queue.add(next.deliveryId, { chain, deliveryId: next.deliveryId });
  }
}

/** Backoff of webhook retries: `firstMs`, doubling, at most an hour. */
export function webhookBackoff(firstMs: number): (attemptsMade: number) => number {
  return (attemptsMade) => Math.min(firstMs * 2 ** Math.max(0, attemptsMade - 1), 3_600_000);
}
