import { type Config, StartupError } from '@patchbay/core';
import {
  CancelChannel,
  TASK_QUEUE_NAME,
  TaskQueue,
  bullPrefix,
  createRedis,
  whenReady,
} from '@patchbay/queue';
import { sandboxHealthCheck } from '@patchbay/sandbox';
import {
  createArtifactStore,
  OutboxReader,
  RedisEnvironmentIndex,
  RedisEventLog,
  RedisTaskStore,
} from '@patchbay/store';
import { JobQueue, ScheduleQueue, createScheduleWorker } from '@patchbay/queue';
import { WebhookRegistry, WebhookUrlPolicy } from '@patchbay/webhooks';
import { ScheduleService, TaskService } from '@patchbay/tasks';
import { OperatorCredentials } from '@patchbay/delivery';
import { MentionIntake, forgeAccess } from '@patchbay/integrations';
import { Queue } from 'bullmq';
import type { FastifyInstance } from 'fastify';
import { fileURLToPath } from 'node:url';
import { buildApp } from './app.js';
import { createApiMetrics } from './metrics.js';
import { createRepoUrlCheck } from './repo-url.js';
import { hasWebBuild } from './web.js';

/** Where `npm start` builds the web page (apps/web/dist), from this file's place in the tree. */
const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/dist', import.meta.url));

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export interface ApiServer {
  app: FastifyInstance;
  /** Where it listens, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** Stops listening and closes every connection it opened. Idempotent. */
  close(): Promise<void>;
}

export interface ApiServerOptions {
  /** SSE keep-alive interval. @default 15_000 */
  keepAliveMs?: number;
}

/** Wires the API from config and starts listening on `config.api.host:port` (0: any free port). */
export async function startApi(config: Config, options: ApiServerOptions = {}): Promise<ApiServer> {
  if (config.api.keys.length === 0 && !LOOPBACK.has(config.api.host)) {
    throw new StartupError(
      `refusing to listen on ${config.api.host} without API keys: set PATCHBAY_API_KEYS, or HOST=127.0.0.1`,
    );
  }
  const { prefix } = config.redis;
  const checkRepoUrl = createRepoUrlCheck(config.repos);
  // A request's calls go out in one write with those of every other request of the same
  // event-loop turn.
  const redis = createRedis({
    url: config.redis.url,
    name: 'patchbay-api',
    failFast: true,
    coalesceWrites: true,
  });
  // The queue's BullMQ calls go on a connection of their own, coalesced the same way.
  const queueRedis = createRedis({
    url: config.redis.url,
    name: 'patchbay-api-queue',
    failFast: true,
    coalesceWrites: true,
  });
  // Serve even when Redis is down (requests answer 503 until it is back), but not before a
  // healthy Redis had its moment to connect.
  await Promise.all([whenReady(redis, 5000), whenReady(queueRedis, 5000)]);
  const artifacts = createArtifactStore(config);
  const store = new RedisTaskStore({ redis, prefix });
  const events = new RedisEventLog({
    redis,
    prefix,
    artifacts,
    createBlockingConnection: () =>
      createRedis({ url: config.redis.url, name: 'patchbay-api-follow' }),
  });
  const queue = new TaskQueue({ connection: queueRedis, prefix });
  const deliveries = new JobQueue<{ taskId: string }>({
    connection: queueRedis,
    prefix,
    name: 'deliveries',
  });
  const cancels = new CancelChannel({ redis, prefix });
  const webhookPolicy = new WebhookUrlPolicy({ allowHosts: config.webhooks.allowHosts });
  const webhooks = new WebhookRegistry({
    redis,
    prefix,
    policy: webhookPolicy,
    configured: config.webhooks.configured,
  });
  // The outbox's readers start where it ends now at the latest, so nothing written from here
  // on is skipped even before a worker first runs.
  for (const reader of ['webhooks', 'deliveries', 'replies'])
    await OutboxReader.ensureCursor(redis, prefix, reader).catch(() => undefined);
  const service = new TaskService({
    store,
    events,
    artifacts,
    queue,
    cancels: { publish: async (id) => void (await cancels.publish(id)) },
    checkRepoUrl,
    checkWebhookUrl: async (url) => (await webhookPolicy.check(url)).url,
    deliveries: {
      // One job per request: a retry after a failure is a job of its own.
      enqueue: (taskId) => deliveries.add(`${taskId}_r${Date.now().toString(36)}`, { taskId }),
    },
    defaults: {
      image: config.sandbox.image,
      model: config.model.name,
      timeoutSeconds: config.tasks.timeoutSeconds,
      maxTurns: config.tasks.maxTurns,
      maxTokens: config.tasks.maxTokens,
      allowAgentNetwork: config.tasks.allowAgentNetwork,
      runtimes: config.tasks.runtimes,
      egressDomains: config.tasks.egress.domains,
      maxActiveTasks: config.api.maxActiveTasks,
      maxAttempts: config.tasks.maxAttempts,
    },
  });
  const scheduleQueue = new ScheduleQueue({ connection: queueRedis, prefix });
  const schedules = new ScheduleService({ redis, prefix, queue: scheduleQueue, tasks: service });
  const metrics = createApiMetrics({
    countByStatus: () => store.countByStatus(),
    queueCounts: () => queue.counts(),
  });
  // bull-board needs a BullMQ Queue of its own; TaskQueue keeps its one private on purpose.
  const adminQueue =
    config.api.adminKey === undefined
      ? undefined
      : new Queue(TASK_QUEUE_NAME, { connection: queueRedis, prefix: bullPrefix(prefix) });
  adminQueue?.on('error', () => {});
  const webDir = config.api.webDir ?? DEFAULT_WEB_DIR;
  const web = hasWebBuild(webDir) ? { root: webDir } : undefined;
  const app = await buildApp({
    logger: { level: config.log.level },
    service,
    schedules,
    webhooks,
    environments: new RedisEnvironmentIndex({ redis, prefix }),
    events,
    keys: config.api.keys,
    rateLimitPerMinute: config.api.rateLimitPerMinute,
    rateLimitRedis: { redis, prefix },
    bodyLimitBytes: config.api.bodyLimitBytes,
    isRedisDown: () => redis.status !== 'ready' || queueRedis.status !== 'ready',
    pingRedis: () => redis.ping(),
    pingSandboxes: sandboxHealthCheck(config),
    ...(options.keepAliveMs === undefined ? {} : { keepAliveMs: options.keepAliveMs }),
    metrics: { ...metrics, token: config.metrics.token },
    ...(config.api.adminKey && adminQueue
      ? { admin: { key: config.api.adminKey, queues: [adminQueue] } }
      : {}),
    ...(web ? { web } : {}),
    ...(config.integrations.length === 0
      ? {}
      : {
          intake: new MentionIntake({
            integrations: config.integrations,
            tasks: service,
            redis,
            prefix,
            forgeFor: forgeAccess(config.delivery.forges, new OperatorCredentials(config.delivery)),
          }),
        }),
  });
  if (!web)
    app.log.warn({ webDir }, 'no web page: the directory holds no build (npm start builds it)');
  // Firings are processed by the API: it is what submits tasks. BullMQ hands each to one instance.
  const scheduleWorker = createScheduleWorker({
    url: config.redis.url,
    prefix,
    fire: (id, at) => schedules.fire(id, at),
    onError: (err) => app.log.warn({ err }, 'the schedule worker failed'),
  });

  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await scheduleWorker.close();
      await app.close();
      await Promise.allSettled([
        queue.close(),
        scheduleQueue.close(),
        deliveries.close(),
        cancels.close(),
        adminQueue?.close(),
      ]);
      redis.disconnect();
      queueRedis.disconnect();
    })());

  try {
    await app.listen({ host: config.api.host, port: config.api.port });
  } catch (err) {
    await close();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new StartupError(
        `port ${config.api.port} on ${config.api.host} is already in use (is Patchbay already running?); stop it or set PORT`,
      );
    }
    throw err;
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.api.port;
  const host = config.api.host.includes(':') ? `[${config.api.host}]` : config.api.host;
  return { app, url: `http://${host}:${port}`, close };
}
