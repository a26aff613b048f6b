import { presentsSecret, type TaskStatus } from '@patchbay/core';
import type { QueueCounts } from '@patchbay/queue';
import type { FastifyInstance, FastifyPluginAsync } from 'fastify';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Where the API's gauges read from at scrape time. */
export interface ApiMetricsSources {
  /** Tasks per status across tenants (the store's counter hash). */
  countByStatus: () => Promise<Record<TaskStatus, number>>;
  /** BullMQ job counts per state. */
  queueCounts: () => Promise<QueueCounts>;
}

/** The API's Prometheus registry and the instruments the HTTP layer feeds. */
export interface ApiMetrics {
  registry: Registry;
  httpDuration: Histogram<'method' | 'route' | 'status_code'>;
}

/**
 * Builds a registry of its own (never prom-client's global one, so that two apps in one process,
 * as in tests, do not collide). Gauges are read at scrape time, so a scrape costs one `HGETALL`
 * and one `getJobCounts`, whatever the number of tasks. A scrape while Redis is down keeps the
 * last values and reports `patchbay_metrics_redis_up 0` instead of failing.
 */
export function createApiMetrics(sources: ApiMetricsSources): ApiMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  // prom-client collects every metric concurrently, so the three gauges share one read of Redis
  // per scrape (the in-flight promise), and all see the same outcome.
  type Snapshot = { tasks: Record<string, number>; queue: Record<string, number> } | null;
  let inFlight: Promise<Snapshot> | undefined;
  const snapshot = (): Promise<Snapshot> =>
    (inFlight ??= Promise.all([sources.countByStatus(), sources.queueCounts()])
      .then(([tasks, queue]): Snapshot => ({ tasks, queue: { ...queue } }))
      .catch((): Snapshot => null)
      .finally(() => (inFlight = undefined)));
  new Gauge({
    name: 'patchbay_metrics_redis_up',
    help: 'Whether this scrape could read task and queue counts from Redis (1) or not (0).',
    registers: [registry],
    async collect() {
      this.set((await snapshot()) === null ? 0 : 1);
    },
  });
  new Gauge({
    name: 'patchbay_tasks',
    help: 'Tasks by status, across tenants.',
    labelNames: ['status'] as const,
    registers: [registry],
    async collect() {
      const counts = (await snapshot())?.tasks ?? {};
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n);
    },
  });
  new Gauge({
    name: 'patchbay_queue_jobs',
    help: 'Jobs of the tasks queue by BullMQ state (waiting = queue depth).',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      const counts = (await snapshot())?.queue ?? {};
      for (const [state, n] of Object.entries(counts)) this.set({ state }, n);
    },
  });
  const httpDuration = new Histogram({
    name: 'patchbay_http_request_duration_seconds',
    help: 'API request duration, by route pattern (not raw URL, to bound cardinality).',
    labelNames: ['method', 'route', 'status_code'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  return { registry, httpDuration };
}

/** Times every request of `app` (call on the root instance, so that hooks see all routes). */
export function instrumentHttp(app: FastifyInstance, metrics: ApiMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.httpDuration.observe(
      {
        method: request.method,
        // Unmatched URLs share one label: a scan of random paths must not mint series.
        route: request.routeOptions.url ?? 'unmatched',
        status_code: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  });
}

export interface MetricsRouteOptions {
  registry: Registry;
  /** When set, scrapes must present it (a bearer token, or basic auth's password). */
  token?: string | undefined;
}

/**
 * `GET /metrics` in the Prometheus text format. Outside the tenant API keys on purpose: a
 * Prometheus server is not a tenant, and the numbers are aggregate. An operator who does not
 * want them public sets PATCHBAY_METRICS_TOKEN (Prometheus `authorization: credentials`).
 */
export const metricsRoutes: FastifyPluginAsync<MetricsRouteOptions> = async (app, options) => {
  app.get('/metrics', { schema: { hide: true } }, async (request, reply) => {
    if (options.token !== undefined) {
      if (!presentsSecret(request.headers.authorization, options.token)) {
        return reply
          .code(401)
          .header('www-authenticate', 'Bearer realm="metrics"')
          .send({ error: { code: 'unauthorized', message: 'metrics need the metrics token' } });
      }
    }
    return reply
      .header('content-type', options.registry.contentType)
      .send(await options.registry.metrics());
  });
};
