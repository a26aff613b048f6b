import {
  startScriptedModelServer,
  type Script,
  type ScriptedModelServer,
} from '@patchbay/agent/testing';
import { startApi, type ApiServer } from '@patchbay/api';
import { type Config, loadConfig } from '@patchbay/core';
import { deletePrefix } from '@patchbay/core/testing';
import { createRedis } from '@patchbay/queue';
import { RedisTaskStore } from '@patchbay/store';
import { startWorker, type WorkerHandle } from '@patchbay/worker';
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  type GitServer,
  type GitServerOptions,
  type RepoBuilder,
  startGitServer,
} from './git-server.js';

export async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

export interface StackOptions {
  /** Repositories served over HTTP on 127.0.0.1. */
  repos?: Record<string, RepoBuilder>;
  /** What the model says; see @patchbay/agent/testing. */
  script?: Script;
  /** Start a worker in this process. @default true */
  worker?: boolean;
  /** Extra environment for the config (API keys, limits, …); a function gets the git server. */
  env?: Record<string, string> | ((git: GitServer) => Record<string, string>);
  /** More git server options (e.g. repositories that accept pushes). */
  git?: Omit<GitServerOptions, 'repos'>;
}

/**
 * The whole service on this machine, isolated by a Redis key prefix and a data directory of its
 * own: a git server, a scripted model, the API and (optionally) a worker, all on 127.0.0.1.
 */
export interface Stack {
  config: Config;
  /** The environment the config was made from (on top of process.env), for child processes. */
  env: Record<string, string>;
  git: GitServer;
  model: ScriptedModelServer;
  api: ApiServer;
  worker: WorkerHandle | undefined;
  /** The API's base URL. */
  url: string;
  /** Starts a worker (e.g. after the first was killed or closed). */
  startWorker(): Promise<WorkerHandle>;
  close(): Promise<void>;
}

export async function startStack(options: StackOptions = {}): Promise<Stack> {
  const id = randomBytes(4).toString('hex');
  const dataDir = await mkdtemp(join(tmpdir(), 'patchbay-e2e-'));
  const git = await startGitServer({ ...options.git, repos: options.repos ?? {} });
  const model = await startScriptedModelServer({ script: options.script ?? [], appendOnly: false });
  const port = await freePort();
  const env: Record<string, string> = {
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'silent',
    PATCHBAY_REDIS_PREFIX: `test-e2e-${id}`,
    PATCHBAY_DATA_DIR: dataDir,
    PATCHBAY_REPO_HOSTS: `http://${git.host}:${git.port}`,
    OPENAI_BASE_URL: model.url,
    OPENAI_API_KEY: 'sk-test-model-key-never-leaks',
    PATCHBAY_WORKER_ID: `e2e-${id}`,
    PATCHBAY_WARM_POOL_SIZE: '0',
    PATCHBAY_REAPER_INTERVAL_SECONDS: '2',
    PATCHBAY_SANDBOX_MEMORY: '1g',
    PATCHBAY_SANDBOX_WORKSPACE_SIZE: '256m',
    PATCHBAY_TASK_TIMEOUT_SECONDS: '300',
    PATCHBAY_RATE_LIMIT_PER_MINUTE: '100000',
    PATCHBAY_SHUTDOWN_GRACE_SECONDS: '2',
    PATCHBAY_JOB_LOCK_SECONDS: '4',
    PATCHBAY_STALLED_CHECK_SECONDS: '2',
    // Tests that a finished task holds no container stay true; the conversation tests keep them.
    PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: '0',
    // Setup runs for every task, as the suites expect; the environment tests turn the cache on.
    PATCHBAY_ENV_CACHE_BYTES: '0',
    ...(typeof options.env === 'function' ? options.env(git) : options.env),
  };
  const config = loadConfig({ ...process.env, ...env });
  const api = await startApi(config, { keepAliveMs: 500 });
  const log = pino({ level: config.log.level });
  let workers = 0;
  const launch = (): Promise<WorkerHandle> =>
    startWorker(
      { ...config, worker: { ...config.worker, id: `${config.worker.id}-${++workers}` } },
      log,
    );
  const worker = options.worker === false ? undefined : await launch();
  return {
    config,
    env,
    git,
    model,
    api,
    worker,
    url: api.url,
    startWorker: launch,
    close: async () => {
      await worker?.close(0);
      await api.close();
      await Promise.allSettled([git.close(), model.close()]);
      await deleteKeys(config.redis.url, config.redis.prefix);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The lifecycle outbox's event types for one task, oldest first (see packages/store). */
export async function lifecycleOf(stack: { config: Config }, taskId: string): Promise<string[]> {
  const redis = createRedis({ url: stack.config.redis.url });
  try {
    const store = new RedisTaskStore({ redis, prefix: stack.config.redis.prefix });
    const types: string[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await store.lifecycleEvents({ limit: 500, ...(after ? { after } : {}) });
      types.push(...page.filter((e) => e.event.taskId === taskId).map((e) => e.event.type));
      if (page.length < 500) return types;
      after = page.at(-1)!.id;
    }
  } finally {
    redis.disconnect();
  }
}

/** Removes one test's keys (never the whole database: other tests share it). */
export async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = createRedis({ url });
  try {
    await deletePrefix(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

/** A JSON request to the API. */
export async function call(
  stack: { url: string },
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${stack.url}${path}`, {
    method,
    headers: { ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Polls a task until it reaches a terminal status (bounded). */
export async function waitForTask(
  stack: { url: string },
  id: string,
  headers: Record<string, string> = {},
  timeoutMs = 90_000,
): Promise<any> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await call(stack, 'GET', `/v1/tasks/${id}`, undefined, headers);
    if (['succeeded', 'failed', 'cancelled'].includes(body?.status)) return body;
    if (Date.now() > deadline) {
      // Where it stands, for the failure's message: its phase and its last events.
      const { body: log } = await call(
        stack,
        'GET',
        `/v1/tasks/${id}/events?limit=1000`,
        undefined,
        headers,
      );
      const last = ((log?.events ?? []) as Record<string, unknown>[])
        .slice(-12)
        .map((e) => JSON.stringify(e).slice(0, 300));
      throw new Error(
        `task ${id} still ${body?.status} (phase ${body?.phase}) after ${timeoutMs} ms; last events:\n${last.join('\n')}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** A worker in a process of its own (so it can be killed for real), on the stack's config. */
export interface ChildWorker {
  child: ChildProcess;
  /** Resolves once the worker takes jobs (it logs `worker ready`). */
  ready: Promise<void>;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

export function spawnWorker(
  stack: { env: Record<string, string> },
  id: string,
  env: Record<string, string> = {},
  /** Runs it through a command prefix (e.g. into another host's network namespace). */
  wrap: (program: string, args: string[]) => [string, string[]] = (p, a) => [p, a],
): ChildWorker {
  const [program, args] = wrap(process.execPath, ['--import', 'tsx', 'apps/worker/src/main.ts']);
  const child = spawn(program, args, {
    cwd: root,
    env: { ...process.env, ...stack.env, PATCHBAY_WORKER_ID: id, LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const ready = new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`worker ${id} did not get ready`)), 30_000);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString();
      if (!seen.includes('worker ready')) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.resume();
      resolve();
    };
    child.stdout.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${id} exited with ${code}`));
    });
  });
  ready.catch(() => undefined);
  return { child, ready };
}

/** Kills a child worker and waits until it is gone. */
export async function killWorker(
  child: ChildProcess,
  signal: NodeJS.Signals = 'SIGKILL',
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  await exited;
}
