import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, spawnWorker, startStack, waitForTask } from '../support/stack.js';

/**
 * Workers SIGKILLed at random points of their tasks' lives, a fresh one started each time.
 * `PATCHBAY_CRASH_TASKS` tasks (CI 5; the published figure uses 20), about one kill per two
 * tasks. Every task must end succeeded, or failed with a code; every patch must apply to its
 * base; and once the reaper has run no container of theirs may be left.
 */
const TASKS = Number(process.env.PATCHBAY_CRASH_TASKS ?? 5);
const KILLS = Math.max(4, Math.ceil(TASKS / 2));
/** The phases kills aim at, in turn. */
const TARGETS = ['agent', 'setup', 'collect', 'fetch', 'verify', 'agent'];
const run = promisify(execFile);
const docker = createDockerClient();
let stack: Stack;
const children = new Set<ChildProcess>();
let spawned = 0;

function startWorker(): ChildProcess {
  const { child } = spawnWorker(stack, `${stack.config.worker.id}-child-${++spawned}`);
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({ 'a.txt': 'a\n', 'src/lib.js': 'export const x = 1;\n' })),
    },
    env: { PATCHBAY_WORKER_CONCURRENCY: '2' },
    script: scenarioScript({
      // Every task writes the same files, so that whichever turn a retried task is answered
      // with, its patch has a known shape.
      work: steps([
        shell('sleep 1; echo changed > a.txt'),
        shell('sleep 1; mkdir -p out && echo new > out/new.txt'),
        shell('sleep 1; rm src/lib.js'),
      ]),
    }),
  });
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await stack?.close();
});

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('workers killed at random points', () => {
  it(`ends all ${TASKS} tasks, with valid patches and no container left, through ${KILLS} SIGKILLs`, async () => {
    let worker = startWorker();
    const ids: string[] = [];
    for (let i = 0; i < TASKS; i++) {
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:work',
        environment: { setup: 'sleep 1', verify: 'test -f out/new.txt' },
      });
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }

    // Each kill aims at a phase in turn: it waits (bounded) for a task to be in it, then strikes
    // after a random moment; a phase that never shows up within the wait gets a random kill.
    const killedIn: string[] = [];
    for (let k = 0; k < KILLS; k++) {
      const target = TARGETS[k % TARGETS.length]!;
      const until = Date.now() + 20_000;
      let phases: string[] = [];
      while (Date.now() < until) {
        const { body } = await call(stack, 'GET', '/v1/tasks?status=running&limit=100');
        phases = body.tasks.map((t: { phase: string }) => t.phase);
        if (phases.includes(target)) break;
        await delay(100);
      }
      await delay(Math.random() * 300);
      killedIn.push(phases.includes(target) ? target : `random(${phases.join('+') || 'idle'})`);
      worker.kill('SIGKILL');
      worker = startWorker();
    }

    const tasks = [];
    for (const id of ids) tasks.push(await waitForTask(stack, id, {}, 300_000));
    const outcome = (t: any) =>
      t.status === 'succeeded' ? 'succeeded' : `${t.status}:${t.error?.code}`;
    console.log(
      `worker-kill: ${TASKS} tasks, ${KILLS} kills (in phase: ${killedIn.join(', ')}); outcomes ${JSON.stringify(
        tasks.reduce<Record<string, number>>(
          (m, t) => ({ ...m, [outcome(t)]: (m[outcome(t)] ?? 0) + 1 }),
          {},
        ),
      )}`,
    );
    for (const task of tasks) {
      expect(['succeeded', 'failed']).toContain(task.status);
      // The one way a task may fail here: its worker died under it on each of its 3 tries.
      if (task.status === 'failed') {
        expect(task.error.code, task.error.message).toBe('worker_lost');
        expect(task.error.message).toMatch(
          /worker stopped before finishing it on every try \(.*stalled/,
        );
      }
    }
    // Most tasks survive: a task fails only after its worker died under it three times.
    expect(tasks.filter((t) => t.status === 'succeeded').length).toBeGreaterThan(0);

    // Every patch a task exposes applies cleanly to its base commit.
    const clone = await mkdtemp(join(tmpdir(), 'patchbay-kill-'));
    try {
      await run('git', ['clone', '-q', stack.git.url('app.git'), clone]);
      for (const task of tasks) {
        const res = await fetch(`${stack.url}/v1/tasks/${task.id}/patch`);
        if (res.status !== 200) continue;
        const patch = Buffer.from(await res.arrayBuffer());
        if (patch.length === 0) continue;
        const file = join(clone, '..', `${task.id}.diff`);
        await writeFile(file, patch);
        await run('git', ['-C', clone, 'checkout', '-q', task.baseCommit]);
        await run('git', ['-C', clone, 'apply', '--check', file]);
        await rm(file, { force: true });
      }
    } finally {
      await rm(clone, { recursive: true, force: true });
    }

    // The reaper removes every container of a killed worker (after its heartbeat lapses).
    const deadline = Date.now() + 90_000;
    for (;;) {
      const left = [];
      for (const id of ids) {
        left.push(
          ...(await docker.listContainers({
            all: true,
            filters: { label: [`${LABELS.task}=${id}`] },
          })),
        );
      }
      if (left.length === 0) break;
      if (Date.now() > deadline) throw new Error(`${left.length} containers never reaped`);
      await delay(1000);
    }
  }, 600_000);
});
