import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRedis } from '@patchbay/queue';
import { type S3TestServer, startS3Server } from '@patchbay/store/testing';
import { type NetnsHost, createNetnsHost, publish } from './netns-host.js';
import { PrivateEngine } from './private-engine.js';
import { retryUntilResolved } from './retry.js';
import {
  type ChildWorker,
  type Stack,
  type StackOptions,
  freePort,
  killWorker,
  spawnWorker,
  startStack,
} from './stack.js';

const run = promisify(execFile);
const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

/**
 * Two hosts on one machine, sharing no directory. Host A is this network namespace: Redis (with
 * a password), the API, an S3-compatible server, and a worker on the shared engine, all reached
 * at A's address on a veth pair (the git server and the scripted model are published there
 * too). Host B is a network namespace of its own with its own `dockerd` (data root, exec root,
 * bridge, cgroup) and a worker, reaching A only over the pair. The API and each worker have their
 * own PATCHBAY_DATA_DIR; every artifact is in the bucket. Workers start when asked.
 */
export interface TwoHosts {
  stack: Stack;
  hostB: NetnsHost;
  engineB: PrivateEngine;
  s3: S3TestServer;
  /** A repository of the stack's git server, as both hosts reach it. */
  repoUrl(name: string): string;
  /** Worker ids, and their data directories. */
  idA: string;
  idB: string;
  dirA: string;
  dirB: string;
  startWorkerA(): ChildWorker;
  startWorkerB(): ChildWorker;
  close(): Promise<void>;
}

export async function startTwoHosts(
  options: Pick<StackOptions, 'repos' | 'script'> & { env?: Record<string, string> },
): Promise<TwoHosts> {
  const hostB = await createNetnsHost('pbhost');
  const cleanup: (() => Promise<unknown>)[] = [() => hostB.close()];
  const workers: ChildWorker[] = [];
  const close = async (): Promise<void> => {
    for (const w of workers) {
      w.child.kill('SIGCONT');
      await killWorker(w.child);
    }
    for (const step of cleanup.reverse()) await step().catch(() => undefined);
  };
  try {
    const a = hostB.peer;
    const redisPort = await freePort();
    const password = randomBytes(12).toString('hex');
    // Reachable from another host, so it asks for a password (as Redis insists).
    const redis: ChildProcess = spawn(
      'redis-server',
      ['--bind', a, '--port', String(redisPort), '--requirepass', password, '--save', ''],
      { stdio: 'ignore' },
    );
    cleanup.push(async () => redis.kill('SIGKILL'));
    const redisUrl = `redis://:${password}@${a}:${redisPort}`;
    await retryUntilResolved(
      async () => {
        const client = createRedis({ url: redisUrl });
        try {
          await client.ping();
        } finally {
          client.disconnect();
        }
      },
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const s3 = await startS3Server({ buckets: ['artifacts'], address: a });
    cleanup.push(() => s3.close());
    let gitPort = 0;
    let modelPort = 0;
    const git = await publish(a, () => gitPort);
    const model = await publish(a, () => modelPort);
    cleanup.push(
      () => git.close(),
      () => model.close(),
    );
    Object.assign(process.env, S3_ENV);
    const stack = await startStack({
      ...options,
      worker: false,
      env: {
        ...S3_ENV,
        REDIS_URL: redisUrl,
        PATCHBAY_REPO_HOSTS: `http://${a}:${git.port}`,
        OPENAI_BASE_URL: `http://${a}:${model.port}/v1`,
        PATCHBAY_ARTIFACTS_S3_BUCKET: 'artifacts',
        PATCHBAY_ARTIFACTS_S3_ENDPOINT: s3.endpoint,
        ...options.env,
      },
    });
    // A's services listen on its side of the pair: they go before the pair does.
    cleanup.push(() => stack.close());
    gitPort = stack.git.port;
    modelPort = Number(new URL(stack.model.url).port);

    const dirA = await mkdtemp(join(tmpdir(), 'pb-host-a-'));
    const dirB = await mkdtemp(join(tmpdir(), 'pb-host-b-'));
    cleanup.push(() => rm(dirA, { recursive: true, force: true }));
    cleanup.push(() => rm(dirB, { recursive: true, force: true }));
    const engineB = new PrivateEngine({
      dir: join(dirB, 'engine'),
      host: `unix://${join(dirB, 'engine', 'docker.sock')}`,
      netns: hostB.name,
      args: [`--cgroup-parent=${hostB.cgroup}`],
    });
    cleanup.push(async () => {
      await engineB.close();
      await hostB.kill();
      // Mounts an engine killed with its host left behind.
      const mounts = (await readFile('/proc/mounts', 'utf8'))
        .split('\n')
        .map((line) => line.split(' ')[1] ?? '')
        .filter((path) => path.startsWith(dirB))
        .sort()
        .reverse();
      for (const path of mounts) await run('umount', ['-l', path]).catch(() => undefined);
    });
    await engineB.start();
    await engineB.copyImage(stack.config.sandbox.image);

    const idA = `${stack.config.worker.id}-host-a`;
    const idB = `${stack.config.worker.id}-host-b`;
    const track = (worker: ChildWorker): ChildWorker => {
      workers.push(worker);
      return worker;
    };
    return {
      stack,
      hostB,
      engineB,
      s3,
      repoUrl: (name) => `http://${a}:${git.port}/${name}`,
      idA,
      idB,
      dirA,
      dirB,
      startWorkerA: () => track(spawnWorker(stack, idA, { PATCHBAY_DATA_DIR: dirA })),
      startWorkerB: () =>
        track(
          spawnWorker(
            stack,
            idB,
            {
              PATCHBAY_DATA_DIR: dirB,
              DOCKER_HOST: `unix://${join(dirB, 'engine', 'docker.sock')}`,
            },
            hostB.command,
          ),
        ),
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
