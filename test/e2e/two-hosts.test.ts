import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { LABELS } from '@patchbay/sandbox';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryUntilResolved } from '../support/retry.js';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type ChildWorker, call, waitForTask } from '../support/stack.js';
import { type TwoHosts, startTwoHosts } from '../support/two-hosts.js';

/**
 * Two hosts on one machine sharing no directory (test/support/two-hosts.ts): host A with Redis,
 * the API, the bucket and a worker; host B a network namespace with its own engine and worker.
 */
let hosts: TwoHosts;
let workerA: ChildWorker;
let workerB: ChildWorker;

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Freezes or thaws a worker process (a host that stops answering, then comes back). */
function freeze(worker: ChildWorker, frozen: boolean): void {
  worker.child.kill(frozen ? 'SIGSTOP' : 'SIGCONT');
}

async function submit(prompt: string): Promise<string> {
  const res = await call(hosts.stack, 'POST', '/v1/tasks', {
    repo: { url: hosts.repoUrl('app.git') },
    prompt,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

async function bytes(path: string): Promise<Buffer> {
  const res = await fetch(`${hosts.stack.url}${path}`);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The worker of each attempt of each turn. */
function workersOf(task: { turns: { attempts: { worker: string | null }[] }[] }): string[] {
  return task.turns.flatMap((t) => t.attempts.map((a) => a.worker ?? 'none'));
}

beforeAll(async () => {
  hosts = await startTwoHosts({
    repos: {
      'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })),
    },
    env: { PATCHBAY_WORKER_CONCURRENCY: '2', PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: '600' },
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
  workerA = hosts.startWorkerA();
  workerB = hosts.startWorkerB();
  await Promise.all([workerA.ready, workerB.ready]);
}, 240_000);

afterAll(async () => {
  await hosts?.close();
});

describe('two hosts, no shared disk', () => {
  it('spreads tasks over both hosts and serves every patch from the bucket', async () => {
    const ids = await Promise.all(Array.from({ length: 8 }, () => submit('SCENARIO:work')));
    const seen = new Set<string>();
    for (const id of ids) {
      const task = await waitForTask(hosts.stack, id, {}, 180_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      for (const w of workersOf(task)) seen.add(w);
      const patch = (await bytes(`/v1/tasks/${id}/patch`)).toString();
      expect(patch).toContain('+one\n+two\n');
    }
    expect([...seen].sort()).toEqual([hosts.idA, hosts.idB].sort());
  });

  it('rebuilds a follow-up cold on A while its sandbox is kept on B, with the same bytes as warm', async () => {
    // A stops answering: B takes both tasks and keeps their sandboxes.
    freeze(workerA, true);
    let control: string;
    let moved: string;
    try {
      [control, moved] = await Promise.all([submit('SCENARIO:work'), submit('SCENARIO:work')]);
      for (const id of [control, moved]) {
        const task = await waitForTask(hosts.stack, id, {}, 120_000);
        expect(task.status).toBe('succeeded');
        expect(workersOf(task)).toEqual([hosts.idB]);
      }
      expect(await hosts.engineB.containers(`${LABELS.task}=${moved}`)).toHaveLength(1);
      // The control's follow-up goes on warm on B.
      await call(hosts.stack, 'POST', `/v1/tasks/${control}/messages`, { prompt: 'SCENARIO:more' });
      const warm = await waitForTask(hosts.stack, control, {}, 120_000);
      expect(warm.status).toBe('succeeded');
      expect(warm.turns[1]).toMatchObject({ warm: true });
      expect(workersOf(warm)).toEqual([hosts.idB, hosts.idB]);
    } finally {
      freeze(workerA, false);
    }
    // Now B stops answering with `moved`'s sandbox kept there; A takes the follow-up.
    freeze(workerB, true);
    try {
      await call(hosts.stack, 'POST', `/v1/tasks/${moved}/messages`, { prompt: 'SCENARIO:more' });
      const cold = await waitForTask(hosts.stack, moved, {}, 120_000);
      expect(cold.status).toBe('succeeded');
      expect(cold.turns[1]).toMatchObject({ warm: false });
      expect(workersOf(cold)).toEqual([hosts.idB, hosts.idA]);
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
          ids.map(async (id) => (await call(hosts.stack, 'GET', `/v1/tasks/${id}`)).body),
        );
        if (tasks.every((t) => t.status === 'running' && t.phase === 'agent')) break;
        expect(Date.now(), JSON.stringify(tasks.map((t) => [t.status, t.phase]))).toBeLessThan(
          until,
        );
        await delay(100);
      }
      await delay(1_000);
      expect((await hosts.engineB.containers()).length).toBeGreaterThanOrEqual(2);
      // Host B is lost: its worker, its engine and every container, at once.
      expect(await hosts.hostB.kill()).toBeGreaterThan(3);
    } finally {
      freeze(workerA, false);
    }
    for (const id of ids) {
      const task = await waitForTask(hosts.stack, id, {}, 180_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      expect(task.tries).toBeGreaterThan(1);
      expect(workersOf(task)).toEqual([hosts.idA]);
      const patch = (await bytes(`/v1/tasks/${id}/patch`)).toString();
      expect(patch).toContain('+s1\n+s2\n+s3\n');
      // The whole log, seq after seq, ending once.
      const { body } = await call(hosts.stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
      const seqs = body.events.map((e: { seq: number }) => e.seq);
      expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
      const ends = body.events.filter(
        (e: { type: string; status?: string }) => e.type === 'status' && e.status === 'succeeded',
      );
      expect(ends).toHaveLength(1);
    }

    // B comes back: same engine state, a new worker process. Its reaper removes what the lost
    // host left (the killed tasks' containers and the sandbox it kept for a follow-up that A ran).
    await hosts.engineB.start();
    expect((await hosts.engineB.containers()).length).toBeGreaterThan(0);
    workerB = hosts.startWorkerB();
    await workerB.ready;
    await retryUntilResolved(
      async () => {
        const left = await hosts.engineB.containers();
        if (left.length > 0) throw new Error(`containers left on B: ${left.join(', ')}`);
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    // A new task still runs anywhere.
    const after = await waitForTask(hosts.stack, await submit('SCENARIO:work'), {}, 120_000);
    expect(after.status).toBe('succeeded');
  });

  it('keeps no artifact on any host’s disk: the API and the workers share no directory', async () => {
    const dirs = [hosts.stack.config.dataDir, hosts.dirA, hosts.dirB];
    expect(new Set(dirs).size).toBe(3);
    for (const dir of dirs) expect(existsSync(join(dir, 'artifacts')), dir).toBe(false);
    expect(await readdir(hosts.stack.config.dataDir)).toEqual([]);
  });
});
