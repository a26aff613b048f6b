import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createRedis } from '@patchbay/queue';
import { LABELS } from '@patchbay/sandbox';
import { type S3TestServer, startS3Server } from '@patchbay/store/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type NetnsHost, createNetnsHost, publish } from '../support/netns-host.js';
import { PrivateEngine } from '../support/private-engine.js';
import { retryUntilResolved } from '../support/retry.js';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import {
  type ChildWorker,
  type Stack,
  call,
  freePort,
  killWorker,
  spawnWorker,
  startStack,
  waitForTask,
} from '../support/stack.js';

/**
 * Two hosts on one machine, sharing no directory. Host A is this network namespace: Redis, the
 * API, an S3-compatible server, and a worker on the shared engine, all reached at A's address on
 * a veth pair (the git server and the scripted model are published there too). Host B is a
 * network namespace of its own with its own `dockerd` (data root, exec root, bridge, cgroup) and
 * a worker, reaching A only over the pair. The API and each worker have their own
 * PATCHBAY_DATA_DIR; every artifact is in the bucket.
 */
const run = promisify(execFile);
const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

let hostB: NetnsHost;
let engineB: PrivateEngine;
let redis: ChildProcess;
let s3: S3TestServer;
let stack: Stack;
const relays: { close(): Promise<void> }[] = [];
let dirA = '';
let dirB = '';
let workerA: ChildWorker;
let workerB: ChildWorker;
let idA = '';
let idB = '';
let repoUrl = '';

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function startWorkerA(): ChildWorker {
  return spawnWorker(stack, idA, { PATCHBAY_DATA_DIR: dirA });
}

function startWorkerB(): ChildWorker {
  return spawnWorker(
    stack,
    idB,
    { PATCHBAY_DATA_DIR: dirB, DOCKER_HOST: `unix://${join(dirB, 'engine', 'docker.sock')}` },
    hostB.command,
  );
}

/** Freezes or thaws a worker process (a host that stops answering, then comes back). */
function freeze(worker: ChildWorker, frozen: boolean): void {
  worker.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
}

async function submit(prompt: string): Promise<string> {
  const res = await call(stack, 'POST', '/v1/tasks', { repo: { url: repoUrl }, prompt });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

async function bytes(path: string): Promise<Buffer> {
  const res = await fetch(`${stack.url}${path}`);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The worker of each attempt of each turn, `turn.attempt=worker`. */
function workersOf(task: { turns: { attempts: { worker: string | null }[] }[] }): string[] {
  return task.turns.flatMap((t) => t.attempts.map((a) => a.worker ?? 'none'));
}

beforeAll(async () => {
  hostB = await createNetnsHost('pbhost');
  const a = hostB.peer;
  const redisPort = await freePort();
  const password = randomBytes(12).toString('hex');
  redis = spawn(
    'redis-server',
    // Reachable from another host, so it asks for a password (as Redis insists).
    ['--bind', a, '--port', String(redisPort), '--requirepass', password, '--save', ''],
    { stdio: 'ignore' },
  );
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
  s3 = await startS3Server({ buckets: ['artifacts'], address: a });
  let gitPort = 0;
  let modelPort = 0;
  const git = await publish(a, () => gitPort);
  const model = await publish(a, () => modelPort);
  relays.push(git, model);
  Object.assign(process.env, S3_ENV);
  stack = await startStack({
    worker: false,
    repos: {
      'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })),
    },
    env: {
      ...S3_ENV,
      REDIS_URL: redisUrl,
      PATCHBAY_REPO_HOSTS: `http://${a}:${git.port}`,
      OPENAI_BASE_URL: `http://${a}:${model.port}/v1`,
      PATCHBAY_ARTIFACTS_S3_BUCKET: 'artifacts',
      PATCHBAY_ARTIFACTS_S3_ENDPOINT: s3.endpoint,
      PATCHBAY_WORKER_CONCURRENCY: '2',
      PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: '600',
    },
    script: scenarioScript({
      work: steps([shell('sleep 1; echo one > one.txt'), shell('sleep 1; echo two >> one.txt')]),
      more: steps([shell('echo more > more.txt && rm a.txt')]),
      slow: steps([
        shell('sleep 2; echo s1 > s.txt'),
        shell('sleep 2; echo s2 >> s.txt'),
        shell('sleep 1; echo s3 >> s.txt'),
      ]),
    }),
  });
  gitPort = stack.git.port;
  modelPort = Number(new URL(stack.model.url).port);
  repoUrl = `http://${a}:${git.port}/app.git`;

  dirA = await mkdtemp(join(tmpdir(), 'pb-host-a-'));
  dirB = await mkdtemp(join(tmpdir(), 'pb-host-b-'));
  engineB = new PrivateEngine({
    dir: join(dirB, 'engine'),
    host: `unix://${join(dirB, 'engine', 'docker.sock')}`,
    netns: hostB.name,
    args: [`--cgroup-parent=${hostB.cgroup}`],
  });
  await engineB.start();
  await engineB.copyImage(stack.config.sandbox.image);

  idA = `${stack.config.worker.id}-host-a`;
  idB = `${stack.config.worker.id}-host-b`;
  workerA = startWorkerA();
  workerB = startWorkerB();
  await Promise.all([workerA.ready, workerB.ready]);
}, 240_000);

afterAll(async () => {
  for (const w of [workerA, workerB]) {
    if (!w) continue;
    freeze(w, false);
    await killWorker(w.child);
  }
  await engineB?.close().catch(() => undefined);
  await hostB?.kill().catch(() => undefined);
  // Mounts a killed engine left behind.
  if (dirB !== '') {
    const mounts = (await readFile('/proc/mounts', 'utf8'))
      .split('\n')
      .map((line) => line.split(' ')[1] ?? '')
      .filter((path) => path.startsWith(dirB))
      .sort()
      .reverse();
    for (const path of mounts) await run('umount', ['-l', path]).catch(() => undefined);
  }
  // A's services listen on its side of the pair: they go before the pair does.
  await stack?.close();
  redis?.kill('SIGKILL');
  await Promise.allSettled([s3?.close(), ...relays.map((r) => r.close())]);
  await hostB?.close();
  for (const dir of [dirA, dirB]) if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('two hosts, no shared disk', () => {
  it('spreads tasks over both hosts and serves every patch from the bucket', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, () => submit('SCENARIO:work')));
    const seen = new Set<string>();
    for (const id of ids) {
      const task = await waitForTask(stack, id, {}, 180_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      for (const w of workersOf(task)) seen.add(w);
      const patch = (await bytes(`/v1/tasks/${id}/patch`)).toString();
      expect(patch).toContain('+one\n+two\n');
    }
    expect([...seen].sort()).toEqual([idA, idB].sort());
  });

  it('rebuilds a follow-up cold on A while its sandbox is kept on B, with the same bytes as warm', async () => {
    // A stops answering: B takes both tasks and keeps their sandboxes.
    freeze(workerA, true);
    let control: string;
    let moved: string;
    try {
      [control, moved] = await Promise.all([submit('SCENARIO:work'), submit('SCENARIO:work')]);
      for (const id of [control, moved]) {
        const task = await waitForTask(stack, id, {}, 120_000);
        expect(task.status).toBe('succeeded');
        expect(workersOf(task)).toEqual([idB]);
      }
      expect(await engineB.containers(`${LABELS.task}=${moved}`)).toHaveLength(1);
      // The control's follow-up goes on warm on B.
      await call(stack, 'POST', `/v1/tasks/${control}/messages`, { prompt: 'SCENARIO:more' });
      const warm = await waitForTask(stack, control, {}, 120_000);
      expect(warm.status).toBe('succeeded');
      expect(warm.turns[1]).toMatchObject({ warm: true });
      expect(workersOf(warm)).toEqual([idB, idB]);
    } finally {
      freeze(workerA, false);
    }
    // Now B stops answering with `moved`'s sandbox kept there; A takes the follow-up.
    freeze(workerB, true);
    try {
      await call(stack, 'POST', `/v1/tasks/${moved}/messages`, { prompt: 'SCENARIO:more' });
      const cold = await waitForTask(stack, moved, {}, 120_000);
      expect(cold.status).toBe('succeeded');
      expect(cold.turns[1]).toMatchObject({ warm: false });
      expect(workersOf(cold)).toEqual([idB, idA]);
    } finally {
      freeze(workerB, false);
    }
    for (const path of ['patch', 'turns/1/patch', 'turns/2/patch']) {
      const warmBytes = await bytes(`/v1/tasks/${control}/${path}`);
      expect((await bytes(`/v1/tasks/${moved}/${path}`)).equals(warmBytes), path).toBe(true);
    }
    expect((await bytes(`/v1/tasks/${moved}/patch`)).toString()).toContain('+more');
  });

  it('finishes on A the tasks of a host lost mid-task; B cleans up its leftovers when it is back', async () => {
    freeze(workerA, true);
    let ids: string[];
    try {
      ids = await Promise.all([submit('SCENARIO:slow'), submit('SCENARIO:slow')]);
      // Both run on B, in the agent phase.
      const until = Date.now() + 60_000;
      for (;;) {
        const tasks = await Promise.all(
          ids.map(async (id) => (await call(stack, 'GET', `/v1/tasks/${id}`)).body),
        );
        if (tasks.every((t) => t.status === 'running' && t.phase === 'agent')) break;
        expect(Date.now(), JSON.stringify(tasks.map((t) => [t.status, t.phase]))).toBeLessThan(
          until,
        );
        await delay(100);
      }
      await delay(1_000);
      expect((await engineB.containers()).length).toBeGreaterThanOrEqual(2);
      // Host B is lost: its worker, its engine and every container, at once.
      expect(await hostB.kill()).toBeGreaterThan(3);
    } finally {
      freeze(workerA, false);
    }
    for (const id of ids) {
      const task = await waitForTask(stack, id, {}, 180_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      expect(task.tries).toBeGreaterThan(1);
      expect(workersOf(task)).toEqual([idA]);
      const patch = (await bytes(`/v1/tasks/${id}/patch`)).toString();
      expect(patch).toContain('+s1\n+s2\n+s3\n');
      // The whole log, seq after seq, ending once.
      const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
      const seqs = body.events.map((e: { seq: number }) => e.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const ends = body.events.filter(
        (e: { type: string; status?: string }) => e.type === 'status' && e.status === 'succeeded',
      );
      expect(ends).toHaveLength(1);
    }

    // B comes back: same engine state, a new worker process. Its reaper removes what the lost
    // host left (the killed tasks' containers and the sandbox it kept for a follow-up that A ran).
    await engineB.start();
    expect((await engineB.containers()).length).toBeGreaterThan(0);
    workerB = startWorkerB();
    await workerB.ready;
    await retryUntilResolved(
      async () => {
        const left = await engineB.containers();
        if (left.length > 0) throw new Error(`containers left on B: ${left.join(', ')}`);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // A new task still runs anywhere.
    const after = await waitForTask(stack, await submit('SCENARIO:work'), {}, 120_000);
    expect(after.status).toBe('succeeded');
  });

  it('keeps no artifact on any host’s disk: the API and the workers share no directory', async () => {
    const dirs = [stack.config.dataDir, dirA, dirB];
    expect(new Set(dirs).size).toBe(3);
    for (const dir of dirs) expect(existsSync(join(dir, 'artifacts')), dir).toBe(false);
    expect(await readdir(stack.config.dataDir)).toEqual([]);
  });
});
