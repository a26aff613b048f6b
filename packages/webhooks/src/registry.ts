import { createHash, randomBytes } from 'node:crypto';
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

export const EVENT_TYPES = LifecycleEvent.shape.type.options;

const StoredWebhook = z.object({
  id: z.string(),
  tenant: z.string(),
  url: z.string(),
  events: z.array(z.string()).nullable(),
  description: z.string().nullable(),
  secret: z.string(),
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
}

/** Where one event goes: a registered or configured webhook, or a task's own `notify` URL. */
export interface Target {
  id: string;
  url: string;
  secret: string;
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
      secret: `whsec_${randomBytes(24).toString('base64url')}`,
      createdAt: new Date().toISOString(),
    };
    await this.#redis
      .multi()
      .hset(this.#tenantKey(tenant), stored.id, JSON.stringify(stored))
      .hset(`${this.#prefix}:index`, stored.id, tenant)
      .exec();
    return { webhook: view(stored, 'api'), secret: stored.secret };
  }

  async list(tenant: string): Promise<WebhookView[]> {
    const own = Object.values(await this.#redis.hgetall(this.#tenantKey(tenant)))
      .map(parseStored)
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    return [
      ...this.#configured.filter((w) => w.tenant === tenant).map((w) => view(w, 'config')),
      ...own.map((w) => view(w, 'api')),
    ];
  }

  /** @throws `not_found` (also another tenant's), `conflict` for one the operator configured */
  async delete(tenant: string, id: string): Promise<void> {
    if (this.#configured.some((w) => w.id === id && w.tenant === tenant)) {
      throw new PatchbayError(
        'conflict',
        'this webhook is configured by the operator (PATCHBAY_WEBHOOKS)',
      );
    }
    const removed = await this.#redis.hdel(this.#tenantKey(tenant), id);
    if (removed === 0) throw new PatchbayError('not_found', `no webhook ${id}`);
    await this.#redis.hdel(`${this.#prefix}:index`, id);
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
   * The tenant's secret for its tasks' `notify` URLs: made on first use, the same after that.
   */
  async notifySecret(tenant: string): Promise<string> {
    const key = `${this.#prefix}:tenant:${tenant}:notify-secret`;
    await this.#redis.set(key, `whsec_${randomBytes(24).toString('base64url')}`, 'NX');
    return (await this.#redis.get(key)) ?? '';
  }

  /** The tenant's webhooks that want `type`. */
  async subscribers(tenant: string, type: LifecycleEventType): Promise<Target[]> {
    const own = Object.values(await this.#redis.hgetall(this.#tenantKey(tenant))).map(parseStored);
    return [...this.#configured.filter((w) => w.tenant === tenant), ...own]
      .filter((w) => w.events === null || w.events.includes(type))
      .map(({ id, url, secret }) => ({ id, url, secret }));
  }

  /** A target as it is now (a webhook deleted since the event: null). */
  async target(id: string): Promise<Target | null> {
    const configured = this.#configured.find((w) => w.id === id);
    if (configured) return configured;
    const tenant = await this.#redis.hget(`${this.#prefix}:index`, id);
    if (tenant === null) return null;
    const raw = await this.#redis.hget(this.#tenantKey(tenant), id);
    return raw === null ? null : parseStored(raw);
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

function view(w: StoredWebhook, source: WebhookView['source']): WebhookView {
  return {
    id: w.id,
    url: w.url,
    events: w.events as LifecycleEventType[] | null,
    description: w.description,
    createdAt: w.createdAt,
    source,
  };
}
