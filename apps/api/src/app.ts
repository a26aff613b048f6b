import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { ApiKey } from '@patchbay/core';
import type { EventLog } from '@patchbay/store';
import type { TaskService } from '@patchbay/tasks';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import { authenticate } from './auth.js';
import { installErrorHandling } from './errors.js';
import { eventRoutes } from './routes/events.js';
import { healthRoutes, type HealthDeps } from './routes/health.js';
import { taskRoutes } from './routes/tasks.js';

export interface AppDeps extends HealthDeps {
  service: TaskService;
  events: EventLog;
  /** Configured API keys; empty means one local tenant and no key. */
  keys: readonly ApiKey[];
  /** Requests per minute per tenant. */
  rateLimitPerMinute: number;
  /** Shares rate-limit counters between API instances; in-memory when absent. */
  rateLimitRedis?: Redis;
  /** @default 1 MiB */
  bodyLimitBytes?: number;
  /** True while Redis is unreachable, so that errors it causes answer 503. */
  isRedisDown: () => boolean;
  /** SSE keep-alive interval. @default 15_000 */
  keepAliveMs?: number;
  logger?: boolean | { level: string };
}

/** Builds the HTTP app without listening, so tests can drive it with `app.inject`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    logger:
      deps.logger === undefined || deps.logger === false
        ? false
        : {
            ...(typeof deps.logger === 'object' ? deps.logger : {}),
            redact: ['req.headers.authorization', 'req.headers.cookie'],
          },
    bodyLimit: deps.bodyLimitBytes ?? 1024 * 1024,
    // Ids and cursors are short; a long URL is abuse, not a request.
    maxParamLength: 200,
    return503OnClosing: true,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandling(app, deps.isRedisDown);

  await app.register(swagger, {
    openapi: {
      info: { title: 'Patchbay', version: '1', description: 'Self-hosted cloud coding agent.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  await app.register(healthRoutes, deps);

  await app.register(async (v1) => {
    v1.decorateRequest('tenant', '');
    v1.addHook('onRequest', authenticate(deps.keys));
    await v1.register(rateLimit, {
      hook: 'preHandler',
      max: deps.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => request.tenant,
      skipOnError: true,
      ...(deps.rateLimitRedis
        ? { redis: deps.rateLimitRedis, nameSpace: 'patchbay:ratelimit:' }
        : {}),
      errorResponseBuilder: (_request, context) => ({
        statusCode: 429,
        code: 'rate_limited',
        message: `rate limit of ${context.max} requests per minute exceeded; retry in ${Math.ceil(context.ttl / 1000)} s`,
      }),
    });
    await v1.register(taskRoutes, { service: deps.service });
    await v1.register(eventRoutes, {
      service: deps.service,
      events: deps.events,
      ...(deps.keepAliveMs === undefined ? {} : { keepAliveMs: deps.keepAliveMs }),
    });
  });
  return app;
}
