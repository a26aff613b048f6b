import { CliRuntime, RuntimeRouter, SandboxGateway, codexAgent } from '@patchbay/runtimes';
import { Agent, createModelClient, modelClientOptionsFromConfig } from '@patchbay/agent';
import { type Config, currentTurn, isTerminal, retryPolicy } from '@patchbay/core';
import { MirrorCache } from '@patchbay/git';
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
  FsArtifactStore,
  RedisEnvironmentIndex,
  RedisEventLog,
  RedisTaskStore,
} from '@patchbay/store';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { Logger as PinoLogger } from 'pino';
import { startLifecycleReaders } from './lifecycle-readers.js';
import { WorkerMetrics, serveMetrics } from './metrics.js';

const HEARTBEAT_TTL_MS = 30_000;
const heartbeatKey = (prefix: string, workerId: string): string => `${prefix}:worker:${workerId}`;
/** Which worker keeps a task's sandbox for a follow-up (expires with the keeping). */
const keptKey = (prefix: string, taskId: string, attempt: number): string =>
  `${prefix}:kept:${taskId}:${attempt}`;

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
  const artifacts = new FsArtifactStore({ root: join(config.dataDir, 'artifacts') });
  const store = new RedisTaskStore({ redis, prefix });
  const events = new RedisEventLog({
    redis,
    prefix,
    artifacts,
    createBlockingConnection: () => createRedis({ url: config.redis.url }),
  });
  const queue = new TaskQueue({ connection: redis, prefix });
  const sandboxes = createSandboxProvider(config, {
    logger: log.child({ component: 'sandbox' }),
    // The reaper spares another worker's container only while its task's current turn is held
    // by a live worker, or that worker keeps it for a follow-up, or, for a pooled one, while
    // that worker still beats.
    isInUse: async (owner) => {
      if (owner.taskId === undefined)
        return (await redis.exists(heartbeatKey(prefix, owner.workerId))) === 1;
      const { taskId, workerId } = owner;
      const task = await store.get(taskId);
      const attempts = Array.from({ length: task?.attempts ?? 1 }, (_, i) => i + 1);
      const kept = await redis.mget(attempts.map((n) => keptKey(prefix, taskId, n)));
      if (kept.includes(workerId)) return true;
      for (const n of attempts)
        if (await queue.isActive(taskId, workerId, task?.turn ?? 1, n)) return true;
      return false;
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
      mark: async (taskId, attempt, ttlMs) => {
        await redis.set(keptKey(prefix, taskId, attempt), config.worker.id, 'PX', ttlMs);
      },
      unmark: async (taskId, attempt) => {
        await redis.del(keptKey(prefix, taskId, attempt));
      },
    },
  });
  const beat = (): Promise<unknown> =>
    redis.set(
      heartbeatKey(prefix, config.worker.id),
      new Date().toISOString(),
      'PX',
      HEARTBEAT_TTL_MS,
    );
  await beat();
  const heartbeat = setInterval(() => void beat().catch(() => undefined), HEARTBEAT_TTL_MS / 3);
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
  const agent = new RuntimeRouter({
    patchbay: new Agent({ model: createModelClient(modelClientOptionsFromConfig(config.model)) }),
    codex: new CliRuntime(codexAgent, modelGateway, log.child({ component: 'codex' })),
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
  });
  // A job that will not run again (stalled too often, out of tries) must not leave its task
  // "running" forever.
  taskWorker.worker.on('failed', (job, err) => {
    if (
      !job ||
      (job.attemptsMade < (job.opts.attempts ?? 1) && !(err.name === 'UnrecoverableError'))
    )
      return;
    const { taskId, attempt = 1 } = job.data;
    void pipeline
      .abandon(taskId, attempt, retryPolicy.workerLost(err.message))
      .catch((e: unknown) => log.warn({ err: e, taskId }, 'marking an abandoned task failed'));
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
  const readers = await startLifecycleReaders({ config, redis, store, artifacts, mirrors, log });
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
        await readers.close();
        clearInterval(heartbeat);
        metricsServer?.close();
        await redis.del(heartbeatKey(prefix, config.worker.id)).catch(() => undefined);
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
