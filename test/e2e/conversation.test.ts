import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT, applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import {
  type Stack,
  call,
  killWorker,
  lifecycleOf,
  spawnWorker,
  startStack,
  waitForTask,
} from '../support/stack.js';

/**
 * Follow-up turns on the real stack: workers run as child processes (so one can be SIGKILLed, and
 * each can have its own keep-alive window), against a git server and the scripted model.
 */
const run = promisify(execFile);
const docker = createDockerClient();
const ALICE = { authorization: 'Bearer alice-key-0123456789abcdef' };
const BOB = { authorization: 'Bearer bob-key-0123456789abcdef00' };

const CREATE = `*** Begin Patch
*** Add File: notes.txt
+line one
*** End Patch`;
const EDIT = `*** Begin Patch
*** Update File: notes.txt
@@
-line one
+line one, edited
+line two
*** End Patch`;

let stack: Stack;
let worker: ChildProcess | undefined;
let spawned = 0;

async function startWorker(keepAliveSeconds: number): Promise<ChildProcess> {
  const { child, ready } = spawnWorker(stack, `${stack.config.worker.id}-conv-${++spawned}`, {
    PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: String(keepAliveSeconds),
  });
  await ready;
  return child;
}

async function stopWorker(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (worker !== undefined) await killWorker(worker, signal);
  worker = undefined;
}

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({
          'README.md': '# App\n',
          'src/greet.js': 'export const greet = (name) => `Hello, ${name}`;\n',
        })),
    },
    env: {
      PATCHBAY_API_KEYS: `alice:${ALICE.authorization.slice(7)},bob:${BOB.authorization.slice(7)}`,
    },
    script: scenarioScript({
      create: steps([applyPatch(CREATE)]),
      edit: steps([applyPatch(EDIT), shell(FINGERPRINT)]),
      'slow-edit': steps([
        shell('sleep 3; echo two >> notes.txt'),
        shell('sleep 1; echo three >> notes.txt'),
      ]),
      sleep: steps([shell('sleep 300', { timeout_ms: 600_000 })]),
    }),
  });
});

afterEach(async () => {
  await stopWorker('SIGKILL');
});

afterAll(async () => {
  await stack?.close();
});

/** Runs the task's verify, which leaves a file the next turn's patch must not pick up. */
const ENVIRONMENT = {
  setup: 'echo setup ran >> /tmp/setup.log',
  verify: 'echo checked > verify.out && grep -q "line one" notes.txt',
};

async function submit(prompt: string, environment: Record<string, unknown> = ENVIRONMENT) {
  const res = await call(
    stack,
    'POST',
    '/v1/tasks',
    { repo: { url: stack.git.url('app.git') }, prompt, environment },
    ALICE,
  );
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
}

const reply = (id: string, prompt: string, headers = ALICE) =>
  call(stack, 'POST', `/v1/tasks/${id}/messages`, { prompt }, headers);
const done = (id: string) => waitForTask(stack, id, ALICE, 120_000);

async function events(id: string): Promise<any[]> {
  const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`, undefined, ALICE);
  return body.events;
}

async function bytes(path: string): Promise<Buffer> {
  const res = await fetch(`${stack.url}${path}`, { headers: ALICE });
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** The events of turn `n`: from its `turn` event (turn 1: from the start) to the next one. */
function turnEvents(log: any[], n: number): any[] {
  const start = n === 1 ? 0 : log.findIndex((e) => e.type === 'turn' && e.turn === n);
  const end = log.findIndex((e, i) => i > start && e.type === 'turn');
  return log.slice(start, end < 0 ? undefined : end);
}
/** A turn that starts from nothing kept: every phase. */
const EVERY_PHASE = ['fetch', 'provision', 'setup', 'agent', 'collect', 'verify', 'publish'];
const phasesOf = (log: any[]) => log.filter((e) => e.type === 'phase').map((e) => e.phase);

/** Fingerprint of a checkout of the base with `patches` applied in order, on the host. */
async function treeWith(base: string, patches: Buffer[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-conv-'));
  try {
    await run('git', ['clone', '-q', stack.git.url('app.git'), dir]);
    await run('git', ['-C', dir, 'checkout', '-q', base]);
    for (const [i, patch] of patches.entries()) {
      if (patch.length === 0) continue;
      const file = join(dir, '..', `${i}-${Date.now()}.diff`);
      await writeFile(file, patch);
      await run('git', ['-C', dir, 'apply', '--binary', file]);
      await rm(file);
    }
    return (await run('sh', ['-c', FINGERPRINT], { cwd: dir })).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a two-turn conversation (create, then edit the created file) and checks its patches. */
async function twoTurns(): Promise<{ id: string; task: any; log: any[]; patch: Buffer }> {
  const id = await submit('SCENARIO:create');
  const first = await done(id);
  expect(first.status, JSON.stringify(first.error)).toBe('succeeded');
  const turn1Patch = await bytes(`/v1/tasks/${id}/patch`);

  const replied = await reply(id, 'SCENARIO:edit the notes');
  expect(replied.status, JSON.stringify(replied.body)).toBe(202);
  expect(replied.body).toMatchObject({ status: 'queued', turn: 2 });
  const task = await done(id);
  expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
  expect(task.turns.map((t: any) => [t.n, t.status, t.prompt])).toEqual([
    [1, 'succeeded', 'SCENARIO:create'],
    [2, 'succeeded', 'SCENARIO:edit the notes'],
  ]);
  expect(task.turns[1].result.files.map((f: any) => [f.path, f.status])).toEqual([
    ['notes.txt', 'modified'],
  ]);
  expect(task.result.files.map((f: any) => [f.path, f.status])).toEqual([['notes.txt', 'added']]);
  expect(task.turns[1].result.verify).toMatchObject({ passed: true });
  expect(task.usage.modelCalls).toBe(
    task.turns[0].usage.modelCalls + task.turns[1].usage.modelCalls,
  );

  // One log across both turns, seqs strictly increasing.
  const log = await events(id);
  expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));

  // The cumulative patch on the base reproduces the sandbox's tree byte for byte (the agent's
  // fingerprint in turn 2), and so does turn 1's patch followed by turn 2's own.
  const patch = await bytes(`/v1/tasks/${id}/patch`);
  const turn1 = await bytes(`/v1/tasks/${id}/turns/1/patch`);
  const turn2 = await bytes(`/v1/tasks/${id}/turns/2/patch`);
  expect(turn1.equals(turn1Patch)).toBe(true);
  expect(turn2.toString()).toContain('+line one, edited');
  expect(patch.toString()).not.toContain('verify.out');
  expect(turn2.toString()).not.toContain('verify.out');
  const inSandbox = turnEvents(log, 2).find((e) => e.type === 'tool_output' && e.name === 'shell');
  expect(inSandbox.output).toContain('notes.txt');
  const onHost = await treeWith(task.baseCommit, [patch]);
  expect(inSandbox.output.trim()).toBe(onHost.trim());
  expect(await treeWith(task.baseCommit, [turn1, turn2])).toBe(onHost);
  return { id, task, log, patch };
}

describe('follow-up turns', () => {
  it('goes on in the kept sandbox within the window: no fetch, no setup; patches add up', async () => {
    worker = await startWorker(600);
    const { id, task, log } = await twoTurns();
    expect(task.turns[1].warm).toBe(true);
    expect(turnEvents(log, 2).find((e) => e.phase === 'provision')).toMatchObject({
      type: 'phase',
      warm: true,
    });
    expect(turnEvents(log, 1).find((e) => e.phase === 'provision')).not.toHaveProperty('warm');
    expect(phasesOf(turnEvents(log, 1))).toEqual(EVERY_PHASE);
    expect(phasesOf(turnEvents(log, 2))).toEqual([
      'provision',
      'agent',
      'collect',
      'verify',
      'publish',
    ]);
    expect(turnEvents(log, 2)[0]).toMatchObject({ type: 'turn', turn: 2 });
    expect(await lifecycleOf(stack, id)).toEqual([
      'task.queued',
      'task.started',
      'task.succeeded',
      'turn.queued',
      'task.started',
      'task.succeeded',
    ]);
    // The sandbox is kept again after turn 2, for the next follow-up. Another worker's reaper
    // (every 2 s here) spares it while its worker keeps it; it goes with that worker.
    const kept = await docker.listContainers({ filters: { label: [`${LABELS.task}=${id}`] } });
    expect(kept).toHaveLength(1);
    const other = spawnWorker(stack, `${stack.config.worker.id}-conv-other`);
    try {
      await other.ready;
      await new Promise((r) => setTimeout(r, 5000));
      const still = await docker.listContainers({ filters: { label: [`${LABELS.task}=${id}`] } });
      expect(still.map((c) => c.Id)).toEqual(kept.map((c) => c.Id));
    } finally {
      await killWorker(other.child);
    }
    await stopWorker();
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.task}=${id}`] },
    });
    expect(left).toEqual([]);
  });

  it('rebuilds the state after the window (fetch, base + patch, setup again) with the same result', async () => {
    worker = await startWorker(600);
    const warm = await twoTurns();
    await stopWorker();

    worker = await startWorker(1);
    const id = await submit('SCENARIO:create');
    expect((await done(id)).status).toBe('succeeded');
    // The window closes and its container goes.
    const until = Date.now() + 20_000;
    while (
      (await docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=${id}`] } }))
        .length > 0
    ) {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await reply(id, 'SCENARIO:edit the notes')).status).toBe(202);
    const task = await done(id);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.turns[1].warm).toBe(false);
    const log = await events(id);
    expect(turnEvents(log, 2).find((e) => e.phase === 'provision')).toMatchObject({
      type: 'phase',
      warm: false,
    });
    expect(phasesOf(turnEvents(log, 2))).toEqual(EVERY_PHASE);
    // Same tree, same patches as the warm path.
    expect((await bytes(`/v1/tasks/${id}/patch`)).equals(warm.patch)).toBe(true);
    expect(
      (await bytes(`/v1/tasks/${id}/turns/2/patch`)).equals(
        await bytes(`/v1/tasks/${warm.id}/turns/2/patch`),
      ),
    ).toBe(true);
  });

  it('an SSE client with keepOpen=true sees the next turn on the same connection', async () => {
    worker = await startWorker(600);
    const id = await submit('SCENARIO:create');
    const abort = new AbortController();
    const res = await fetch(`${stack.url}/v1/tasks/${id}/events?keepOpen=true`, {
      headers: { ...ALICE, accept: 'text/event-stream' },
      signal: abort.signal,
    });
    expect(res.status).toBe(200);
    const seen: any[] = [];
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    /** Reads events off the one connection until `until` holds for one (bounded). */
    const readUntil = async (until: (event: any) => boolean): Promise<void> => {
      const deadline = Date.now() + 60_000;
      for (;;) {
        let cut: number;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = block.split('\n').find((l) => l.startsWith('data: '));
          if (data === undefined) continue;
          const event = JSON.parse(data.slice(6));
          seen.push(event);
          if (until(event)) return;
        }
        expect(Date.now()).toBeLessThan(deadline);
        const { value, done: ended } = await reader.read();
        expect(ended, 'the stream closed').toBe(false);
        buffer += value;
      }
    };
    const ends = (event: any) =>
      event.type === 'status' && ['succeeded', 'failed', 'cancelled'].includes(event.status);
    await readUntil(ends);
    expect((await reply(id, 'SCENARIO:edit the notes')).status).toBe(202);
    await readUntil(ends);
    abort.abort();
    expect(seen.map((e) => e.seq)).toEqual(seen.map((_, i) => i + 1));
    expect(seen.filter(ends).map((e) => e.status)).toEqual(['succeeded', 'succeeded']);
    expect(seen).toContainEqual(expect.objectContaining({ type: 'turn', turn: 2 }));
    expect(seen.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('refuses a follow-up on a running or cancelled task (409), and on another tenant’s (404)', async () => {
    worker = await startWorker(600);
    const id = await submit('SCENARIO:sleep', {});
    const until = Date.now() + 60_000;
    while ((await call(stack, 'GET', `/v1/tasks/${id}`, undefined, ALICE)).body.phase !== 'agent')
      expect(Date.now()).toBeLessThan(until);
    const running = await reply(id, 'more');
    expect(running.status).toBe(409);
    expect(running.body.error).toMatchObject({
      code: 'conflict',
      message: expect.stringMatching(/running/),
    });
    expect((await reply(id, 'more', BOB)).status).toBe(404);

    await call(stack, 'POST', `/v1/tasks/${id}/cancel`, undefined, ALICE);
    expect((await done(id)).status).toBe('cancelled');
    const cancelled = await reply(id, 'more');
    expect(cancelled.status).toBe(409);
    expect(cancelled.body.error.message).toMatch(/cancelled/);

    // A task that failed before any patch was collected has nothing to go on from.
    const broken = await submit('SCENARIO:create', { setup: 'exit 3' });
    expect((await done(broken)).error.code).toBe('setup_failed');
    const resultless = await reply(broken, 'more');
    expect(resultless.status).toBe(409);
    expect(resultless.body.error.details).toMatchObject({ reason: 'no_workspace_result' });

    // Bad input: a 400 naming the field, and the task as it was.
    const finished = await submit('SCENARIO:create');
    expect((await done(finished)).status).toBe('succeeded');
    const blank = await reply(finished, '   ');
    expect(blank.status).toBe(400);
    const extra = await call(
      stack,
      'POST',
      `/v1/tasks/${finished}/messages`,
      { prompt: 'x', turn: 3 },
      ALICE,
    );
    expect(extra.status).toBe(400);
    expect(
      (await call(stack, 'GET', `/v1/tasks/${finished}`, undefined, ALICE)).body,
    ).toMatchObject({
      status: 'succeeded',
      turn: 1,
    });
    expect(
      (await call(stack, 'GET', `/v1/tasks/${finished}/turns/2/patch`, undefined, ALICE)).status,
    ).toBe(404);
    expect(
      (await call(stack, 'GET', `/v1/tasks/${finished}/turns/1/patch`, undefined, BOB)).status,
    ).toBe(404);
  });

  it('a worker SIGKILLed in turn 2 leaves turn 1 intact, and turn 2 runs again', async () => {
    worker = await startWorker(600);
    const id = await submit('SCENARIO:create');
    const first = await done(id);
    expect(first.status).toBe('succeeded');
    const turn1 = await bytes(`/v1/tasks/${id}/turns/1/patch`);

    expect((await reply(id, 'SCENARIO:slow-edit')).status).toBe(202);
    const until = Date.now() + 60_000;
    for (;;) {
      const log = await events(id);
      if (turnEvents(log, 2).some((e) => e.type === 'tool_call')) break;
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 100));
    }
    await stopWorker('SIGKILL');
    worker = await startWorker(600);

    const task = await done(id);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.turns[0]).toEqual(first.turns[0]);
    expect((await bytes(`/v1/tasks/${id}/turns/1/patch`)).equals(turn1)).toBe(true);
    // The new worker had no kept sandbox: it rebuilt turn 1's tree and ran turn 2 from the start.
    expect(task.turns[1]).toMatchObject({ warm: false, status: 'succeeded' });
    expect(task.tries).toBeGreaterThan(1);
    const notes = (await bytes(`/v1/tasks/${id}/patch`)).toString();
    expect(notes).toContain('+line one\n+two\n+three\n');
    const log = await events(id);
    expect(log.map((e) => e.seq)).toEqual(log.map((_, i) => i + 1));
  });
});
