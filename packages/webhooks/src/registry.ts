import { createHash, randomBytes } from 'node:crypto';
import { newSecret } from './signature.js';
import {
  type ConfiguredWebhook,
  LifecycleEvent,
  type LifecycleEventType,
  PatchbayError,
} from '@patchbay/core';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { WebhookUrlPolicy } from './url-policy.js';

/** Most webhooks one tenant may register through the API. */
const MAX_PER_TENANT = 20;
/** Delivery log entries kept per webhook, newest first. */
const LOG_ENTRIES = 200;
/** How long a rotated-out secret still signs deliveries when the request names no time. */
export const DEFAULT_ROTATION_GRACE_SECONDS = 86_400;

export const EVENT_TYPES = LifecycleEvent.shape.type.options;

const StoredWebhook = z.object({
  id: z.string(),
  tenant: z.string(),
  url: z.string(),
  events: z.array(z.string()).nullable(),
  description: z.string().nullable(),
  secret: z.string(),
  /** The secret before the last rotation, still signing until `expiresAt`. */
  previous: z.object({ secret: z.string(), expiresAt: z.string() }).nullable().default(null),
  createdAt: z.string(),
});
type StoredWebhook = z.infer<typeof StoredWebhook>;

/** A webhook as its tenant sees it: never its secret, which is shown once, on creation. */
export interface WebhookView {
  id: string;
  url: string;
  /** Event types it gets; null: every type. */
  events: LifecycleEventType[] | null;
  description: string | null;
  createdAt: string;
  /** `api`: registered by the tenant; `config`: set by the operator (PATCHBAY_WEBHOOKS). */
  source: 'api' | 'config';
  /** `disabled`: nothing is sent until it is enabled again (a receiver answered 410 Gone). */
  status: 'active' | 'disabled';
  disabledAt: string | null;
  disabledReason: string | null;
  /** Until when the secret before the last rotation still signs deliveries beside the new one. */
  previousSecretExpiresAt: string | null;
}

/** Why and when a webhook stopped being sent to. */
interface Disabled {
  at: string;
  reason: string;
}

/** Where one event goes: a registered or configured webhook, or a task's own `notify` URL. */
export interface Target {
  id: string;
  url: string;
  /** What signs its deliveries: the current secret, then one rotated out but not yet expired. */
  secrets: string[];
}

/** One try of one delivery, as the delivery log keeps it. */
export interface DeliveryAttempt {
  deliveryId: string;
  event: LifecycleEventType;
  taskId: string;
  /** Which try of this delivery, from 1. */
  attempt: number;
  /** `delivered`; `retrying` (another try is due); `gave_up` (out of time, or refused). */
  outcome: 'delivered' | 'retrying' | 'gave_up';
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  at: string;
}

/** The id of a task's own `notify` target. */
export const notifyTargetId = (taskId: string): string => `notify_${taskId}`;

/**
 * Webhooks per tenant: those registered through the API (in Redis) and those the operator
 * configured, the tenant's secret for `notify` URLs, and each webhook's delivery log.
 */
export class WebhookRegistry {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #configured: readonly StoredWebhook[];
  readonly #policy: WebhookUrlPolicy;

  constructor(options: {
    redis: Redis;
    prefix: string;
    policy: WebhookUrlPolicy;
    configured?: readonly ConfiguredWebhook[];
  }) {
    this.#redis = options.redis;
    this.#prefix = `${options.prefix}:webhooks`;
    this.#policy = options.policy;
    this.#configured = (options.configured ?? []).map((w) => ({
      id: `whc_${createHash('sha256').update(`${w.tenant} ${w.url}`).digest('hex').slice(0, 16)}`,
      tenant: w.tenant,
      url: w.url,
      events: w.events ?? null,
      description: 'configured by the operator',
      secret: w.secret,
      previous: null,
      createdAt: new Date(0).toISOString(),
    }));
  }

  /**
   * Registers a webhook for the tenant after the URL policy passed it (DNS included).
   * @returns its view and its signing secret, which is never shown again.
   */
  async create(
    tenant: string,
    input: {
      url: string;
      events?: LifecycleEventType[] | undefined;
      description?: string | undefined;
    },
  ): Promise<{ webhook: WebhookView; secret: string }> {
    const checked = await this.#policy.check(input.url);
    if ((await this.#redis.hlen(this.#tenantKey(tenant))) >= MAX_PER_TENANT) {
      throw new PatchbayError(
        'policy_refused',
        `a tenant may have at most ${MAX_PER_TENANT} webhooks`,
      );
    }
    const stored: StoredWebhook = {
      id: `wh_${randomBytes(12).toString('hex')}`,
      tenant,
      url: checked.url,
      events: input.events === undefined ? null : [...new Set(input.events)],
      description: input.description ?? null,
      secret: newSecret(),
      previous: null,
      createdAt: new Date().toISOString(),
    };
    await this.#redis
      .multi()
      .hset(this.#tenantKey(tenant), stored.id, JSON.stringify(stored))
      .hset(`${this.#prefix}:index`, stored.id, tenant)
      .exec();
    return { webhook: view(stored, 'api', null), secret: stored.secret };
  }

  async list(tenant: string): Promise<WebhookView[]> {
    const [own, disabled] = await Promise.all([
      this.#redis.hgetall(this.#tenantKey(tenant)),
      this.#disabled(),
    ]);
    const stored = Object.values(own)
      .map(parseStored)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return [
      ...this.#configured
        .filter((w) => w.tenant === tenant)
        .map((w) => view(w, 'config', disabled.get(w.id) ?? null)),
      ...stored.map((w) => view(w, 'api', disabled.get(w.id) ?? null)),
    ];
  }

  /**
   * Gives a registered webhook a new secret. The old one keeps signing deliveries beside it (a
   * second signature in each header) for `graceSeconds`, so receivers can switch without missing
   * any; 0 ends it at once.
   * @returns the webhook and its new secret, which is never shown again
   * @throws `not_found`; `conflict` for one the operator configured (its secret is in its config)
   */
  async rotate(
    tenant: string,
    id: string,
    graceSeconds: number,
  ): Promise<{ webhook: WebhookView; secret: string }> {
    const stored = await this.#own(tenant, id);
    const rotated: StoredWebhook = {
      ...stored,
      secret: newSecret(),
      previous:
        graceSeconds > 0
          ? {
              secret: stored.secret,
              expiresAt: new Date(Date.now() + graceSeconds * 1000).toISOString(),
            }
          : null,
    };
    await this.#redis.hset(this.#tenantKey(tenant), id, JSON.stringify(rotated));
    const disabled = (await this.#disabled()).get(id) ?? null;
    return { webhook: view(rotated, 'api', disabled), secret: rotated.secret };
  }

  /**
   * Stops sending to a webhook (its receiver answered 410 Gone): events from now on are not
   * queued for it, and deliveries already queued are dropped. `enable` undoes it.
   */
  async disable(id: string, reason: string): Promise<void> {
    const entry: Disabled = { at: new Date().toISOString(), reason };
    await this.#redis.hset(`${this.#prefix}:disabled`, id, JSON.stringify(entry));
  }

  /** Sends to a disabled webhook again, from the next event on. @throws `not_found` */
  async enable(tenant: string, id: string): Promise<WebhookView> {
    const webhook = (await this.list(tenant)).find((w) => w.id === id);
    if (webhook === undefined) throw new PatchbayError('not_found', `no webhook ${id}`);
    await this.#redis.hdel(`${this.#prefix}:disabled`, id);
    return { ...webhook, status: 'active', disabledAt: null, disabledReason: null };
  }

  /** @throws `not_found` (also another tenant's), `conflict` for one the operator configured */
  async delete(tenant: string, id: string): Promise<void> {
    await this.#own(tenant, id);
    await this.#redis
      .multi()
      .hdel(this.#tenantKey(tenant), id)
      .hdel(`${this.#prefix}:index`, id)
      .hdel(`${this.#prefix}:disabled`, id)
      .exec();
  }

  /** The newest tries first. @throws `not_found` when the tenant has no such webhook */
  async deliveries(tenant: string, id: string, limit = 50): Promise<DeliveryAttempt[]> {
    const known =
      this.#configured.some((w) => w.id === id && w.tenant === tenant) ||
      (await this.#redis.hexists(this.#tenantKey(tenant), id)) === 1;
    if (!known) throw new PatchbayError('not_found', `no webhook ${id}`);
    const raw = await this.#redis.lrange(this.#logKey(id), 0, limit - 1);
    return raw.map((entry) => JSON.parse(entry) as DeliveryAttempt);
  }

  async record(targetId: string, attempt: DeliveryAttempt): Promise<void> {
    await this.#redis
      .multi()
      .lpush(this.#logKey(targetId), JSON.stringify(attempt))
      .ltrim(this.#logKey(targetId), 0, LOG_ENTRIES - 1)
      .expire(this.#logKey(targetId), 30 * 86_400)
      .exec();
  }

  /**
   * The tenant's secret for its tasks' `notify` URLs: made on first use, the same after that
   * (until rotated).
   */
  async notifySecret(tenant: string): Promise<string> {
    const key = this.#notifyKey(tenant);
    await this.#redis.set(key, newSecret(), 'NX');
    return (await this.#redis.get(key)) ?? '';
  }

  /** What signs the tenant's `notify` deliveries: its secret, and one rotated out within its grace. */
  async notifySecrets(tenant: string): Promise<string[]> {
    const current = await this.notifySecret(tenant);
    const previous = await this.#redis.get(`${this.#notifyKey(tenant)}:previous`);
    return previous === null ? [current] : [current, previous];
  }

  /** A new `notify` secret; the old one keeps signing beside it for `graceSeconds`. */
  async rotateNotifySecret(
    tenant: string,
    graceSeconds: number,
  ): Promise<{ secret: string; previousSecretExpiresAt: string | null }> {
    const key = this.#notifyKey(tenant);
    const old = await this.notifySecret(tenant);
    const secret = newSecret();
    const tx = this.#redis.multi().set(key, secret);
    if (graceSeconds > 0) tx.set(`${key}:previous`, old, 'EX', graceSeconds);
    else tx.del(`${key}:previous`);
    await tx.exec();
    return {
      secret,
      previousSecretExpiresAt:
        graceSeconds > 0 ? new Date(Date.now() + graceSeconds * 1000).toISOString() : null,
    };
  }

  /** The tenant's enabled webhooks that want `type`. */
  async subscribers(tenant: string, type: LifecycleEventType): Promise<Target[]> {
    const [own, disabled] = await Promise.all([
      this.#redis.hgetall(this.#tenantKey(tenant)),
      this.#disabled(),
    ]);
    return [
      ...this.#configured.filter((w) => w.tenant === tenant),
      ...Object.values(own).map(parseStored),
    ]
      .filter((w) => !disabled.has(w.id) && (w.events === null || w.events.includes(type)))
      .map(targetOf);
  }

  /** A target as it is now (a webhook deleted or disabled since the event: null). */
  async target(id: string): Promise<Target | null> {
    if ((await this.#redis.hexists(`${this.#prefix}:disabled`, id)) === 1) return null;
    const configured = this.#configured.find((w) => w.id === id);
    if (configured) return targetOf(configured);
    const tenant = await this.#redis.hget(`${this.#prefix}:index`, id);
    if (tenant === null) return null;
    const raw = await this.#redis.hget(this.#tenantKey(tenant), id);
    return raw === null ? null : targetOf(parseStored(raw));
  }

  /** @throws `not_found` (also another tenant's), `conflict` for one the operator configured */
  async #own(tenant: string, id: string): Promise<StoredWebhook> {
    if (this.#configured.some((w) => w.id === id && w.tenant === tenant)) {
      throw new PatchbayError(
        'conflict',
        'this webhook is configured by the operator (PATCHBAY_WEBHOOKS)',
      );
    }
    const raw = await this.#redis.hget(this.#tenantKey(tenant), id);
    if (raw === null) throw new PatchbayError('not_found', `no webhook ${id}`);
    return parseStored(raw);
  }

  async #disabled(): Promise<Map<string, Disabled>> {
    const raw = await this.#redis.hgetall(`${this.#prefix}:disabled`);
    return new Map(Object.entries(raw).map(([id, entry]) => [id, JSON.parse(entry) as Disabled]));
  }

  #notifyKey(tenant: string): string {
    return `${this.#prefix}:tenant:${tenant}:notify-secret`;
  }

  #tenantKey(tenant: string): string {
    return `${this.#prefix}:tenant:${tenant}`;
  }

  #logKey(id: string): string {
    return `${this.#prefix}:${id}:deliveries`;
  }
}

function parseStored(raw: string): StoredWebhook {
  return StoredWebhook.parse(JSON.parse(raw));
}

/** The rotated-out secret while it is still within its grace. */
function previousSecret(w: StoredWebhook): StoredWebhook['previous'] {
  return w.previous !== null && Date.parse(w.previous.expiresAt) > Date.now() ? w.previous : null;
}

function targetOf(w: StoredWebhook): Target {
  const previous = previousSecret(w);
  return {
    id: w.id,
    url: w.url,
    secrets: previous === null ? [w.secret] : [w.secret, previous.secret],
  };
}

function view(
  w: StoredWebhook,
  source: WebhookView['source'],
  disabled: Disabled | null,
): WebhookView {
  return {
    id: w.id,
    url: w.url,
    events: w.events as LifecycleEventType[] | null,
    description: w.description,
    createdAt: w.createdAt,
    source,
    status: disabled === null ? 'active' : 'disabled',
    disabledAt: disabled?.at ?? null,
    disabledReason: disabled?.reason ?? null,
    previousSecretExpiresAt: previousSecret(w)?.expiresAt ?? null,
  };
}
