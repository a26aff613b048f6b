import rateLimit from '@fastify/rate-limit';
import { PatchbayError } from '@patchbay/core';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { CoalescingRedisStore } from './rate-limit-store.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The handler runs while the tenant's rate limit is checked, and answers only after it
     * through {@link afterRateLimit}, so that the limit's Redis call goes out with the handler's
     * own. For routes that change nothing: a refused request has still done its reads.
     */
    rateLimitAlongside?: boolean;
  }
  interface FastifyRequest {
    /** The request's rate-limit check; rejects with `rate_limited` when over the limit. */
    rateLimitChecked: Promise<void> | null;
  }
}

export interface TenantRateLimitOptions {
  /** Requests per minute per tenant. */
  perMinute: number;
  /** Shares the counters between API instances; in-memory when absent. */
  redis?: { redis: Redis; prefix: string } | undefined;
}

/** The plugin makes its store with `new`; this class carries the Redis connection in. */
function coalescingStore(redis: { redis: Redis; prefix: string }) {
  return class extends CoalescingRedisStore {
    constructor() {
      super(redis.redis, `${redis.prefix}:ratelimit:`);
    }
  };
}

/**
 * Counts every request of the scope against its tenant (`request.tenant`), per fixed minute, and
 * refuses those over the limit with 429 `rate_limited`. `@fastify/rate-limit` decides and answers;
 * the counts live in Redis under `${prefix}:ratelimit:<tenant>`, kept by a store that sends the
 * concurrent requests of one tenant as one call (rate-limit-store.ts). When the store fails, the
 * request goes through, and a Redis outage then answers 503 from the call that needs Redis.
 */
export async function tenantRateLimit(
  app: FastifyInstance,
  options: TenantRateLimitOptions,
): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    max: options.perMinute,
    timeWindow: 60_000,
    keyGenerator: (request) => request.tenant,
    skipOnError: true,
    ...(options.redis ? { store: coalescingStore(options.redis) } : {}),
  });
  const limit = app.createRateLimit();
  app.decorateRequest('rateLimitChecked', null);
  app.addHook('preHandler', async (request, reply) => {
    const checked = check(limit, request, reply);
    if (request.routeOptions.config.rateLimitAlongside === true) {
      // Awaited by the handler; a rejection is not unhandled while the handler works.
      checked.catch(() => {});
      request.rateLimitChecked = checked;
      return;
    }
    await checked;
  });
}

async function check(
  limit: ReturnType<FastifyInstance['createRateLimit']>,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  const result = await limit(request);
  if (result.isAllowed) return;
  void reply
    .header('x-ratelimit-limit', result.max)
    .header('x-ratelimit-remaining', result.remaining)
    .header('x-ratelimit-reset', result.ttlInSeconds);
  if (!result.isExceeded) return;
  void reply.header('retry-after', result.ttlInSeconds);
  throw new PatchbayError(
    'rate_limited',
    `rate limit of ${result.max} requests per minute exceeded; retry in ${result.ttlInSeconds} s`,
  );
}

/**
 * In a `rateLimitAlongside` route: what `work` (started just before) resolves to, once the
 * request's rate limit has let it through; `rate_limited` when it did not, whatever `work` did.
 */
export async function afterRateLimit<T>(request: FastifyRequest, work: Promise<T>): Promise<T> {
  // Handled from here on, so that it may settle while the limit is still being checked.
  work.catch(() => {});
  await request.rateLimitChecked;
  return await work;
}
