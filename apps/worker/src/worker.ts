import { CliRuntime, RuntimeRouter, SandboxGateway, codexAgent } from '@patchbay/runtimes';
import { Agent, createModelClient, modelClientOptionsFromConfig } from '@patchbay/agent';
import { type Config, currentTurn, isTerminal, retryPolicy } from '@patchbay/core';
import { Deliverer, OperatorCredentials, startDeliveryConsumer } from '@patchbay/delivery';
import { Replier, forgeAccess, startReplyConsumer } from '@patchbay/integrations';
import { MirrorCache } from '@patchbay/git';
import { startWebhookConsumer } from '@patchbay/webhooks';
import {
  EnvironmentCache,
  Pipeline,
  S3Snapshots,
  SandboxKeeper,
  type RepoSource,
} from '@patchbay/pipeline';
import { CancelChannel, TaskQueue, createRedis, createTaskWorker } from '@patchbay/queue';
import { createSandboxProvider } from '@patchbay/sandbox';
import {
  createArtifactStore,
  RedisEnvironmentIndex,
  RedisEventLog,
  RedisTaskStore,
  WorkerRegistry,
} from '@patchbay/store';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Logger as PinoLogger } from 'pino';
import { WorkerMetrics, serveMetrics } from './metrics.js';

export interface WorkerHandle {
  /** Stops taking tasks, lets running ones finish within `graceMs`, then hands them back. Idempotent. */
  close(graceMs?: number): Promise<void>;
  /** Ids of the tasks running here. */
  running(): string[];
  /** The worker's Prometheus registry (also served when PATCHBAY_WORKER_METRICS_PORT is set). */
  metrics: WorkerMetrics;
  /** Where `/metrics` is served, e.g. `http://127.0.0.1:9464`; undefined when off. */
  metricsUrl: string | undefined;
}

/** Wires a worker from config: the queue feeds the pipeline, one task per job. */
export async function startWorker(config: Config, log: PinoLogger): Promise<WorkerHandle> {
  const { prefix } = config.redis;
  const redis = createRedis({ url: config.redis.url, name: `patchbay-worker:${config.worker.id}` });
  const artifacts = createArtifactStore(config);
  const store = new RedisTaskStore({ redis, prefix });
  const events = new RedisEventLog({
    redis,
    prefix,
    artifacts,
    createBlockingConnection: () => createRedis({ url: config.redis.url }),
  });
  const queue = new TaskQueue({ connection: redis, prefix });
  const registry = new WorkerRegistry({ redis, prefix });
  const sandboxes = createSandboxProvider(config, {
    logger: log.child({ component: 'sandbox' }),
    // The reaper spares another worker's container only while its task's current turn is held
    // by a live worker, or that worker keeps it for a follow-up, or, for a pooled one, while
    // that worker still beats.
    isInUse: async (owner) => {
      const { taskId, workerId } = owner;
      const task = taskId === undefined ? null : await store.get(taskId);
      return registry.inUse(
        owner,
        task?.attempts ?? 1,
        async (attempt) =>
          taskId !== undefined && queue.isActive(taskId, workerId, task?.turn ?? 1, attempt),
      );
    },
  });
  // A worker that cannot use its engine (down, a refused TLS client certificate) says so and
  // stops here, before it takes a task.
  await sandboxes.ready().catch(async (err: unknown) => {
    await sandboxes.close().catch(() => undefined);
    redis.disconnect();
    throw err;
  });
  const keeper = new SandboxKeeper({
    keepAliveMs: config.worker.keepAliveMs,
    maxKept: config.worker.maxKept,
    // A follow-up that another worker took without this sandbox (it provisioned afresh, or it
    // already ended): the sandbox kept here will not be used.
    isStale: async (taskId, turn) => {
      const task = await store.get(taskId);
      if (task === null) return true;
      if (task.turn <= turn) return false;
      return isTerminal(task.status) || currentTurn(task).warm === false;
    },
    log: log.child({ component: 'keeper' }),
    registry: {
      mark: (taskId, attempt, ttlMs) => registry.markKept(taskId, attempt, config.worker.id, ttlMs),
      unmark: (taskId, attempt) => registry.unmarkKept(taskId, attempt),
    },
  });
  const membership = await registry.join(config.worker.id);
  const mirrors = new MirrorCache({
    root: join(config.dataDir, 'mirrors'),
    policy: { hosts: config.repos.hosts, allowSsh: config.repos.allowSsh },
    allowSsh: config.repos.allowSsh,
    maxMirrorBytes: config.repos.maxMirrorBytes,
    refreshAfterMs: config.repos.refreshAfterMs,
    logger: log.child({ component: 'git' }),
  });
  const repos: RepoSource = {
    resolve: async (url, ref, signal) => (await mirrors.resolve(url, ref, { signal })).sha,
    checkout: (sandbox, url, sha, signal, path) =>
      mirrors.checkout(sandbox, url, sha, { signal, ...(path === undefined ? {} : { path }) }),
  };
  // Declared before the task worker exists: the gauge reads it lazily, at scrape time.
  let runningTasks = (): number => 0;
  const metrics = new WorkerMetrics({
    runningTasks: () => runningTasks(),
    runningSandboxes: () => sandboxes.running(),
    keptSandboxes: () => keeper.size,
  });
  // The model gateway, for agents that run inside the sandbox; set up on a first such task.
  const modelGateway = new SandboxGateway({
    upstream: {
      baseUrl: config.model.baseURL ?? 'https://api.openai.com/v1',
      apiKey: config.model.apiKey,
    },
    pinned: config.tasks.egress.pinned,
    log: log.child({ component: 'gateway' }),
  });
  // Only the runtimes the server offers; a task that still names another fails clearly.
  const offered = new Set(config.tasks.runtimes);
  const agent = new RuntimeRouter({
    ...(offered.has('patchbay')
      ? {
          patchbay: new Agent({
            model: createModelClient(modelClientOptionsFromConfig(config.model)),
          }),
        }
      : {}),
    ...(offered.has('codex')
      ? { codex: new CliRuntime(codexAgent, modelGateway, log.child({ component: 'codex' })) }
      : {}),
  });
  const environments =
    config.environments.maxBytes > 0
      ? new EnvironmentCache({
          dir: join(config.dataDir, 'environments'),
          index: new RedisEnvironmentIndex({ redis, prefix }),
          maxBytes: config.environments.maxBytes,
          ttlMs: config.environments.ttlMs,
          workerId: config.worker.id,
          log: log.child({ component: 'environments' }),
          shared: config.environments.s3 && new S3Snapshots(config.environments.s3),
        })
      : undefined;
  const pipeline = new Pipeline({
    store,
    events: metrics.observing(events),
    artifacts,
    sandboxes,
    repos,
    agent,
    keeper,
    environments,
    egress: { open: () => modelGateway.openEgress() },
    workerId: config.worker.id,
    log: log,
    options: {
      allowAgentNetwork: config.tasks.allowAgentNetwork,
      maxPatchBytes: config.tasks.maxPatchBytes,
    },
  });

  const taskWorker = createTaskWorker({
    url: config.redis.url,
    prefix,
    concurrency: config.worker.concurrency,
    name: config.worker.id,
    lockDuration: config.worker.lockDurationMs,
    stalledInterval: config.worker.stalledIntervalMs,
    processor: (taskId, { signal, try: tryNo, attempt }) =>
      pipeline.run(taskId, { signal, try: tryNo, attempt }),
    onError: (err) => log.warn({ err }, 'queue error'),
    // A job that will not run again must not leave its task "running" forever.
    onGivenUp: ({ taskId, attempt, reason }) =>
      void pipeline
        .abandon(taskId, attempt, retryPolicy.workerLost(reason))
        .catch((err: unknown) => log.warn({ err, taskId }, 'marking an abandoned task failed')),
  });

  const cancels = new CancelChannel({
    redis,
    prefix,
    onError: (err) => log.warn({ err }, 'cancel channel error'),
  });
  await cancels.subscribe((taskId) => {
    if (taskWorker.cancel(taskId)) log.info({ taskId }, 'cancelling');
  });
  runningTasks = () => taskWorker.running().length;
  await taskWorker.waitUntilReady();
  // What hangs off the lifecycle outbox: delivery, webhooks, and answers on forge threads.
  const outbox = { redis, url: config.redis.url, prefix, consumer: config.worker.id, store };
  const credentials = new OperatorCredentials(config.delivery);
  const readers = await Promise.all([
    startDeliveryConsumer({
      ...outbox,
      deliverer: new Deliverer({
        store,
        artifacts,
        push: (repoUrl, request) => mirrors.deliver(repoUrl, request),
        credentialFor: (repoUrl) => credentials.for(repoUrl),
        forges: config.delivery.forges,
        author: config.delivery.author,
        publicUrl: config.publicUrl,
        log: log.child({ component: 'delivery' }),
      }),
      log: log.child({ component: 'delivery' }),
    }),
    startWebhookConsumer({
      ...outbox,
      settings: config.webhooks,
      log: log.child({ component: 'webhooks' }),
    }),
    ...(config.integrations.length === 0
      ? []
      : [
          startReplyConsumer({
            ...outbox,
            replier: new Replier({
              store,
              forgeFor: forgeAccess(config.delivery.forges, credentials),
              publicUrl: config.publicUrl,
              log: log.child({ component: 'replies' }),
            }),
            log: log.child({ component: 'replies' }),
          }),
        ]),
  ]);
  let metricsServer: Server | undefined;
  if (config.metrics.workerPort > 0) {
    metricsServer = await serveMetrics(metrics.registry, {
      host: config.metrics.workerHost,
      port: config.metrics.workerPort,
      token: config.metrics.token,
    });
  }
  const metricsUrl = metricsServer
    ? `http://${config.metrics.workerHost}:${(metricsServer.address() as { port: number }).port}`
    : undefined;
  log.info({ concurrency: config.worker.concurrency }, 'worker ready');

  let closing: Promise<void> | undefined;
  return {
    running: () => taskWorker.running(),
    metrics,
    metricsUrl,
    close: (graceMs = config.worker.shutdownGraceMs) =>
      (closing ??= (async () => {
        await taskWorker.close({ graceMs });
        await Promise.allSettled(readers.map((reader) => reader.close()));
        metricsServer?.close();
        await membership.leave();
        await keeper.close();
        await Promise.allSettled([
          cancels.close(),
          queue.close(),
          sandboxes.close(),
          modelGateway.close(),
        ]);
        redis.disconnect();
      })()),
  };
}
