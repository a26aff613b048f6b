import type { Fault, ScriptedTurn } from '@patchbay/agent/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Scenario, scenarioScript, shell } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * A model server that misbehaves. The scripted server plays one turn (and its faults) at a time
 * for all tasks, so these tasks run one after another; each must end in bounded time with the
 * outcome its fault calls for.
 */
let stack: Stack;

/** Edits a file on the first turn, after `faults`; then finishes. */
const faulty =
  (faults: Fault[], extra: Partial<ScriptedTurn> = {}): Scenario =>
  (n) =>
    n === 0
      ? { text: 'Editing.', calls: [shell('echo ok > ok.txt')], faults, ...extra }
      : { text: 'Done.' };

beforeAll(async () => {
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({
      'slow-first-byte': faulty([], { delayMs: 4000 }),
      'cut-stream': faulty([
        { type: 'cut', afterEvents: 2 },
        { type: 'cut', afterEvents: 5 },
      ]),
      'rate-limit-storm': faulty(
        Array.from(
          { length: 5 },
          () => ({ type: 'status', status: 429, retryAfterMs: 50 }) as const,
        ),
      ),
      'server-errors': faulty([
        { type: 'status', status: 500 },
        { type: 'status', status: 503 },
      ]),
      'stream-error': faulty([{ type: 'stream_error', code: 'server_error' }]),
      // More 429s than the 6 attempts of a turn: the turn, and so the task, fails.
      'endless-429': faulty(
        Array.from(
          { length: 8 },
          () => ({ type: 'status', status: 429, retryAfterMs: 20 }) as const,
        ),
      ),
      // A client error is not retried at all.
      'bad-request': faulty([{ type: 'status', status: 400 }]),
      // Never done: a tool call every turn, for ever.
      'endless-tools': (n) => ({ text: `Turn ${n}.`, calls: [shell(`echo ${n} >> log.txt`)] }),
      // Huge token counts: the token budget runs out long before the turns do.
      'token-hog': (n) => ({
        text: `Turn ${n}.`,
        calls: [shell('true')],
        usage: { inputTokens: 4000, outputTokens: 4000 },
      }),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
});

async function run(scenario: string, limits?: Record<string, number>, on = stack) {
  const started = Date.now();
  const res = await call(on, 'POST', '/v1/tasks', {
    repo: { url: on.git.url('app.git') },
    prompt: `SCENARIO:${scenario}`,
    ...(limits ? { limits } : {}),
  });
  expect(res.status).toBe(202);
  const task = await waitForTask(on, res.body.id, {}, 120_000);
  return { task, ms: Date.now() - started };
}

/**
 * A scenario whose task fails mid-turn leaves that turn unfinished on the scripted server, which
 * would answer the next task's request with it: those run on a stack of their own.
 */
async function alone(scenario: Scenario) {
  const own = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
    script: scenarioScript({ alone: scenario }),
  });
  try {
    const result = await run('alone', undefined, own);
    return { ...result, requests: own.model.requests.length };
  } finally {
    await own.close();
  }
}

describe('a misbehaving model server', () => {
  it.each([
    ['slow-first-byte', 'a 4 s wait before the first byte', 0],
    ['cut-stream', 'streams cut mid-way, twice', 2],
    ['rate-limit-storm', 'five 429s in a row', 5],
    ['server-errors', '500 then 503', 2],
    ['stream-error', 'an error event inside a 200 stream', 1],
  ])('%s (%s): the task still succeeds', async (scenario, _what, faults) => {
    const played = () => stack.model.requests.filter((r) => r.outcome === 'fault').length;
    const before = played();
    const { task, ms } = await run(scenario);
    // Each fault was met and retried past.
    expect(played() - before).toBe(faults);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.result.files.map((f: { path: string }) => f.path)).toEqual(['ok.txt']);
    expect(ms).toBeLessThan(60_000);
  });

  it('fails with model_error when 429s outlast every attempt of a turn', async () => {
    // More 429s than the 6 attempts of a turn: the turn, and so the task, fails.
    const { task, ms } = await alone(
      faulty(Array.from({ length: 8 }, () => ({ type: 'status', status: 429, retryAfterMs: 20 }))),
    );
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('model_error');
    expect(ms).toBeLessThan(60_000);
  });

  it('fails with model_error on malformed stream JSON, without retrying a broken server', async () => {
    const { task, ms, requests } = await alone(faulty([{ type: 'malformed', afterEvents: 1 }]));
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('model_error');
    expect(task.error.message).toMatch(/malformed JSON/);
    expect(requests).toBe(1);
    expect(ms).toBeLessThan(30_000);
  });

  it('fails with model_error at once on a 400, without retrying', async () => {
    const { task, ms, requests } = await alone(faulty([{ type: 'status', status: 400 }]));
    expect(requests).toBe(1);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('model_error');
    expect(ms).toBeLessThan(30_000);
  });

  it('stops a model that never stops calling tools at maxTurns, with budget_exhausted', async () => {
    const { task, ms } = await run('endless-tools', { maxTurns: 5 });
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('budget_exhausted');
    expect(task.usage.modelCalls).toBeLessThanOrEqual(5);
    expect(ms).toBeLessThan(60_000);
  });

  it('stops a model past its token budget, with budget_exhausted', async () => {
    const { task, ms } = await run('token-hog', { maxTokens: 20_000, maxTurns: 50 });
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('budget_exhausted');
    expect(task.usage.modelCalls).toBeLessThan(10);
    expect(ms).toBeLessThan(60_000);
  });
});
