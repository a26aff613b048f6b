import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { ApiKey } from '@patchbay/core';
import type { EventLog, RedisEnvironmentIndex } from '@patchbay/store';
import type { ScheduleService, TaskService } from '@patchbay/tasks';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  jsonSchemaTransform,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { Redis } from 'ioredis';
import type { Queue } from 'bullmq';
import { adminRoutes } from './admin.js';
import { authenticate } from './auth.js';
import { clientErrorHandler, frameworkErrors, installErrorHandling } from './errors.js';
import { eventRoutes } from './routes/events.js';
import { type ApiMetrics, instrumentHttp, metricsRoutes } from './metrics.js';
import { tenantRateLimit } from './rate-limit.js';
import { integrationRoutes } from './routes/integrations.js';
import { mcpRoutes } from './routes/mcp.js';
import { scheduleRoutes } from './routes/schedules.js';
import { healthRoutes, type HealthDeps } from './routes/health.js';
import { deliveryRoutes } from './routes/delivery.js';
import { environmentRoutes } from './routes/environments.js';
import { taskRoutes } from './routes/tasks.js';
import { webhookRoutes } from './routes/webhooks.js';
import type { WebhookRegistry } from '@patchbay/webhooks';
import type { MentionIntake } from '@patchbay/integrations';
import { TaskView } from './schemas.js';
import { webRoutes } from './web.js';

export interface AppDeps extends HealthDeps {
  service: TaskService;
  schedules: ScheduleService;
  webhooks: WebhookRegistry;
  environments: RedisEnvironmentIndex;
  events: EventLog;
  /** Configured API keys; empty means one local tenant and no key. */
  keys: readonly ApiKey[];
  /** Requests per minute per tenant. */
  rateLimitPerMinute: number;
  /** Shares rate-limit counters between API instances; in-memory when absent. */
  rateLimitRedis?: { redis: Redis; prefix: string };
  /** @default 1 MiB */
  bodyLimitBytes?: number;
  /** True while Redis is unreachable, so that errors it causes answer 503. */
  isRedisDown: () => boolean;
  /** SSE keep-alive interval. @default 15_000 */
  keepAliveMs?: number;
  logger?: boolean | { level: string };
  /** Prometheus metrics at `/metrics`; no such route when absent. */
  metrics?: ApiMetrics & { token?: string | undefined };
  /** The queue dashboard at `/admin/queues`; off when absent. */
  admin?: { key: string; queues: Queue[] };
  /** The web page at `/`, from a built apps/web; off when absent. */
  web?: { root: string };
  /** Forge webhooks at `/v1/integrations/{forge}/events`; off when absent. */
  intake?: MentionIntake;
}

/** JSON of frozen task views, by view. */
const serializedViews = new WeakMap<object, string>();

function serializeView(view: unknown): string {
  if (typeof view !== 'object' || view === null) return JSON.stringify(view);
  const known = serializedViews.get(view);
  if (known !== undefined) return known;
  const json = JSON.stringify(view);
  if (Object.isFrozen(view)) serializedViews.set(view, json);
  return json;
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
    routerOptions: { maxParamLength: 200 },
    return503OnClosing: true,
    // Router and HTTP-parser refusals answer with the API's error shape too.
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  // A task record is parsed with the Task schema by the store on its way in and out, and
  // `toView` is the only way a record becomes a TaskView: checking it a third time with zod on
  // the way out cost GET /v1/tasks/:id about a fifth of its throughput (bench/RESULTS.md, API).
  // Every other response is checked against its schema as it is serialized.
  // A view of an unchanged record is the same frozen object (see toView), and is serialized once.
  app.setSerializerCompiler<Parameters<typeof serializerCompiler>[0]['schema']>((route) =>
    route.schema === TaskView ? serializeView : serializerCompiler(route),
  );
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
  if (deps.metrics) {
    instrumentHttp(app, deps.metrics);
    await app.register(metricsRoutes, deps.metrics);
  }
  if (deps.admin) await app.register(adminRoutes, deps.admin);
  if (deps.web) await app.register(webRoutes, deps.web);
  // Authenticated by the forge's signature, not an API key.
  if (deps.intake) await app.register(integrationRoutes, { intake: deps.intake });

  await app.register(async (v1) => {
    v1.decorateRequest('tenant', '');
    v1.addHook('onRequest', authenticate(deps.keys));
    await tenantRateLimit(v1, {
      perMinute: deps.rateLimitPerMinute,
      redis: deps.rateLimitRedis,
    });
    await v1.register(taskRoutes, { service: deps.service });
    await v1.register(deliveryRoutes, { service: deps.service });
    await v1.register(webhookRoutes, { registry: deps.webhooks });
    await v1.register(environmentRoutes, { index: deps.environments });
    await v1.register(eventRoutes, {
      service: deps.service,
      events: deps.events,
      ...(deps.keepAliveMs === undefined ? {} : { keepAliveMs: deps.keepAliveMs }),
    });
    await v1.register(scheduleRoutes, { schedules: deps.schedules });
    await v1.register(mcpRoutes);
  });
  return app;
}
