import { type ChildProcess, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ScriptRequest } from '@patchbay/agent/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
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
 * Best-of-N on the real stack: two worker processes of one task each, three attempts whose models
 * (scripted, told apart by model name) write different fixes, judged by the repository's verify.
 */
const run = promisify(execFile);
// By absolute path: `npx patchbay` would fetch an unrelated npm package of the same name.
const bin = fileURLToPath(new URL('../../node_modules/.bin/patchbay', import.meta.url));
let stack: Stack;
const workers: ChildProcess[] = [];

/** What each model writes: only fix-b's answer passes verify. */
const FIXES: Record<string, string> = {
  'fix-a': 'sleep 2; echo 41 > answer.txt',
  'fix-b': 'sleep 2; echo 42 > answer.txt',
  'fix-c': 'sleep 2; echo forty-two > answer.txt; echo note > NOTES.md',
};

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'answer.txt': '0\n' })) },
    env: {
      PATCHBAY_WORKER_CONCURRENCY: '1',
      PATCHBAY_MAX_ATTEMPTS: '4',
      PATCHBAY_MAX_ACTIVE_TASKS: '4',
    },
    script: scenarioScript({
      fix: (n, request: ScriptRequest) =>
        n === 0
          ? { text: 'Fixing.', calls: [shell(FIXES[request.model] ?? 'true')] }
          : { text: `Done by ${request.model}.` },
      look: steps([shell('cat answer.txt')]),
      hang: (n) =>
        n === 0
          ? { text: 'Waiting.', calls: [shell('sleep 300', { timeout_ms: 600_000 })] }
          : { text: 'Done.' },
    }),
  });
  for (let i = 1; i <= 2; i++) {
    const { child, ready } = spawnWorker(stack, `${stack.config.worker.id}-best-${i}`);
    workers.push(child);
    await ready;
  }
});

afterAll(async () => {
  for (const child of workers) await killWorker(child);
  await stack?.close();
});

const submit = async (body: Record<string, unknown>) => {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    environment: { verify: 'grep -qx 42 answer.txt' },
    ...body,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id as string;
};

async function bytes(path: string): Promise<Buffer> {
  const res = await fetch(`${stack.url}${path}`);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('best-of-N attempts', () => {
  it(
    'picks the one attempt whose verify passed, says why, and lets a user overrule it',
    { timeout: 120_000 },
    async () => {
      const id = await submit({ prompt: 'SCENARIO:fix', models: ['fix-a', 'fix-b', 'fix-c'] });
      const task = await waitForTask(stack, id, {}, 90_000);
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      expect(task.attempts).toBe(3);
      const selection = task.result.selection;
      expect(selection.chosen).toBe(2);
      expect(selection.reason).toBe('attempt 2 (fix-b) is the only attempt whose verify passed');
      expect(selection.ranking.map((r: any) => [r.attempt, r.verifyPassed])).toEqual([
        [2, true],
        [1, false],
        [3, false],
      ]);
      expect(task.turns[0].chosen).toBe(2);

      const { body } = await call(stack, 'GET', `/v1/tasks/${id}/attempts`);
      expect(body.chosen).toBe(2);
      const attempts = body.attempts;
      expect(attempts.map((a: any) => [a.n, a.model, a.status])).toEqual([
        [1, 'fix-a', 'failed'],
        [2, 'fix-b', 'succeeded'],
        [3, 'fix-c', 'failed'],
      ]);
      expect(attempts[0].error.code).toBe('verify_failed');
      for (const a of attempts) expect(a.usage.modelCalls).toBe(2);
      expect(task.usage.modelCalls).toBe(6);
      // Two workers, one attempt at a time each: two attempts ran at once, on both.
      const spans = attempts.map((a: any) => [
        Date.parse(a.startedAt),
        Date.parse(a.finishedAt),
        a.worker,
      ]);
      const overlapping = spans.some(([s1, e1, w1]: any, i: number) =>
        spans.some(([s2, e2, w2]: any, j: number) => i !== j && w1 !== w2 && s1 < e2 && s2 < e1),
      );
      expect(new Set(attempts.map((a: any) => a.worker)).size).toBe(2);
      expect(overlapping).toBe(true);

      // Each attempt has its own log, and the task's log tells of each.
      const own = await call(stack, 'GET', `/v1/tasks/${id}/attempts/3/events?limit=1000`);
      expect(own.body.events.map((e: any) => e.type)).toContain('tool_call');
      expect(JSON.stringify(own.body.events)).toContain('forty-two');
      const taskLog = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
      expect(
        taskLog.body.events
          .filter((e: any) => e.type === 'attempt')
          .map((e: any) => e.attempt)
          .sort(),
      ).toEqual([1, 2, 3]);
      expect(taskLog.body.events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
      expect(await lifecycleOf(stack, id)).toEqual([
        'task.queued',
        'task.started',
        'task.succeeded',
      ]);

      // Every attempt's patch downloads and applies to the base; the task's is the chosen one's.
      const patches = [1, 2, 3].map((n) => bytes(`/v1/tasks/${id}/attempts/${n}/patch`));
      const [p1, p2, p3] = await Promise.all(patches);
      expect(p1!.toString()).toContain('+41');
      expect(p2!.toString()).toContain('+42');
      expect(p3!.toString()).toContain('NOTES.md');
      const dir = await mkdtemp(join(tmpdir(), 'patchbay-best-'));
      try {
        await run('git', ['clone', '-q', stack.git.url('app.git'), dir]);
        await run('git', ['-C', dir, 'checkout', '-q', task.baseCommit]);
        for (const [i, patch] of [p1!, p2!, p3!].entries()) {
          const file = join(dir, '..', `best-${i}.diff`);
          await writeFile(file, patch);
          await run('git', ['-C', dir, 'apply', '--check', file]);
          await rm(file);
        }
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
      expect((await bytes(`/v1/tasks/${id}/patch`)).equals(p2!)).toBe(true);

      // A user overrules the rule: the task's patch becomes attempt 3's, and that is recorded.
      const chosen = await call(stack, 'POST', `/v1/tasks/${id}/attempts/3/choose`);
      expect(chosen.status, JSON.stringify(chosen.body)).toBe(200);
      expect(chosen.body.result.selection).toMatchObject({
        chosen: 3,
        overruled: { ruleChose: 2 },
      });
      expect(chosen.body).toMatchObject({ status: 'failed', error: { code: 'verify_failed' } });
      expect((await bytes(`/v1/tasks/${id}/patch`)).equals(p3!)).toBe(true);
      // The CLI shows the attempts (the chosen one marked) and downloads one attempt's patch.
      const shown = await run(bin, ['attempts', id], {
        env: { ...process.env, PATCHBAY_URL: stack.url },
      });
      expect(shown.stdout).toMatch(
        /^ {2}1\. failed {4}fix-a · verify failed · 1 files, \d+ bytes · \d+ tokens · verify_failed$/m,
      );
      expect(shown.stdout).toMatch(/^\* 3\. failed {4}fix-c · verify failed · 2 files/m);
      const one = await run(bin, ['patch', id, '--attempt', '1'], {
        env: { ...process.env, PATCHBAY_URL: stack.url },
        encoding: 'buffer',
      });
      expect(Buffer.from(one.stdout).equals(p1!)).toBe(true);
      const usage = await run(bin, ['patch', id, '--attempt', 'two'], {
        env: { ...process.env, PATCHBAY_URL: stack.url },
      }).catch((err: { code: number }) => err);
      expect(usage).toMatchObject({ code: 2 });
      // Bad choices: an attempt that does not exist, or no attempt number at all.
      expect((await call(stack, 'POST', `/v1/tasks/${id}/attempts/9/choose`)).status).toBe(404);
      expect((await call(stack, 'POST', `/v1/tasks/${id}/attempts/0/choose`)).status).toBe(400);
    },
  );

  it(
    'counts attempts against the tenant cap, and cancels every attempt, running or queued',
    { timeout: 90_000 },
    async () => {
      const id = await submit({ prompt: 'SCENARIO:hang', attempts: 3 });
      const until = Date.now() + 60_000;
      for (;;) {
        const { body } = await call(stack, 'GET', `/v1/tasks/${id}/attempts`);
        if (body.attempts.filter((a: any) => a.status === 'running').length === 2) break;
        expect(Date.now()).toBeLessThan(until);
        await new Promise((r) => setTimeout(r, 200));
      }
      // The tenant's cap (4 here) counts attempts: 3 are held, so 2 more are refused.
      const over = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:hang',
        attempts: 2,
      });
      expect(over.status).toBe(429);
      expect(over.body.error.code).toBe('rate_limited');
      expect((await call(stack, 'POST', `/v1/tasks/${id}/cancel`)).status).toBe(202);
      const task = await waitForTask(stack, id, {}, 60_000);
      expect(task.status).toBe('cancelled');
      const { body } = await call(stack, 'GET', `/v1/tasks/${id}/attempts`);
      expect(body.attempts.map((a: any) => a.status)).toEqual([
        'cancelled',
        'cancelled',
        'cancelled',
      ]);
      expect(await lifecycleOf(stack, id)).toEqual([
        'task.queued',
        'task.started',
        'task.cancelled',
      ]);
    },
  );

  it('retries only the attempt whose worker died', { timeout: 120_000 }, async () => {
    const id = await submit({ prompt: 'SCENARIO:fix', models: ['fix-b', 'fix-b'] });
    const until = Date.now() + 60_000;
    let attempts: any[] = [];
    for (;;) {
      attempts = (await call(stack, 'GET', `/v1/tasks/${id}/attempts`)).body.attempts;
      if (attempts.every((a) => a.status === 'running' && a.worker !== null)) break;
      expect(Date.now()).toBeLessThan(until);
      await new Promise((r) => setTimeout(r, 100));
    }
    // Kill the worker running attempt 1; a fresh one takes its place.
    const victim = workers.findIndex((w) =>
      attempts[0].worker.endsWith(`-best-${workers.indexOf(w) + 1}`),
    );
    expect(victim).toBeGreaterThanOrEqual(0);
    await killWorker(workers[victim]!);
    const { child, ready } = spawnWorker(stack, `${stack.config.worker.id}-best-${victim + 1}`);
    workers[victim] = child;
    await ready;
    const task = await waitForTask(stack, id, {}, 90_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const ended = (await call(stack, 'GET', `/v1/tasks/${id}/attempts`)).body.attempts;
    expect(ended.map((a: any) => [a.n, a.status, a.tries])).toEqual([
      [1, 'succeeded', 2],
      [2, 'succeeded', 1],
    ]);
  });

  it('refuses more attempts than the operator allows', async () => {
    const res = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'x',
      attempts: 5,
    });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatchObject({
      code: 'policy_refused',
      details: { field: 'attempts', max: 4 },
    });
    const bad = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'x',
      attempts: 0,
    });
    expect(bad.status).toBe(400);
  });
});
