import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * Schedules on the real stack: BullMQ job schedulers fire a task spec on a cron pattern (every
 * two seconds here), as the tenant, never while the previous run is still going; pause, resume
 * and delete; a tenant sees only its own.
 */
const ACME = { authorization: 'Bearer acme-schedule-key-0123456789ab' };
const OTHER = { authorization: 'Bearer other-schedule-key-0123456789ab' };
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    env: {
      PATCHBAY_API_KEYS: `acme:${ACME.authorization.slice(7)},other:${OTHER.authorization.slice(7)}`,
    },
    // Each run outlasts the two seconds between firings, so some firings find it still going.
    script: scenarioScript({ slow: steps([shell('sleep 3')]) }),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

const spec = () => ({ repo: { url: stack.git.url('app.git') }, prompt: 'Check in. SCENARIO:slow' });
const runsOf = async (id: string): Promise<any[]> =>
  (await call(stack, 'GET', `/v1/schedules/${id}/runs`, undefined, ACME)).body.runs;

describe('schedules', () => {
  it('fires on its pattern, never over a run still going, and stops when paused or deleted', async () => {
    const created = await call(
      stack,
      'POST',
      '/v1/schedules',
      { cron: '*/2 * * * * *', timezone: 'Europe/Paris', spec: spec() },
      ACME,
    );
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const id: string = created.body.id;
    expect(created.body).toMatchObject({ paused: false, timezone: 'Europe/Paris', lastRun: null });
    expect(Date.parse(created.body.nextRunAt)).toBeGreaterThan(Date.now() - 1000);

    // Two runs that started tasks, and at least one firing skipped while one was going.
    await expect
      .poll(async () => (await runsOf(id)).filter((r) => r.taskId !== null).length, {
        timeout: 60_000,
        interval: 500,
      })
      .toBeGreaterThanOrEqual(2);
    const paused = await call(stack, 'POST', `/v1/schedules/${id}/pause`, undefined, ACME);
    expect(paused.body).toMatchObject({ paused: true, nextRunAt: null });
    const runs = await runsOf(id);
    const started = runs.filter((r) => r.taskId !== null);
    expect(runs.some((r) => /^the previous run is still (queued|running)$/.test(r.skipped))).toBe(
      true,
    );
    // Never two of its tasks at once: each started after the one before it ended.
    const tasks = await Promise.all(
      started.reverse().map((r) => waitForTask(stack, r.taskId, ACME, 60_000)),
    );
    for (const task of tasks) {
      expect(task.status).toBe('succeeded');
      expect(task.origin).toEqual({ kind: 'schedule', scheduleId: id });
    }
    for (let i = 1; i < tasks.length; i++)
      expect(Date.parse(tasks[i].createdAt)).toBeGreaterThanOrEqual(
        Date.parse(tasks[i - 1].finishedAt),
      );

    // Paused: nothing more fires.
    const count = (await runsOf(id)).length;
    await new Promise((r) => setTimeout(r, 4500));
    expect((await runsOf(id)).length).toBe(count);
    const resumed = await call(stack, 'POST', `/v1/schedules/${id}/resume`, undefined, ACME);
    expect(resumed.body.paused).toBe(false);
    await expect
      .poll(async () => (await runsOf(id)).length, { timeout: 30_000, interval: 500 })
      .toBeGreaterThan(count);

    expect((await call(stack, 'DELETE', `/v1/schedules/${id}`, undefined, ACME)).status).toBe(204);
    expect((await call(stack, 'GET', `/v1/schedules/${id}`, undefined, ACME)).status).toBe(404);
  }, 150_000);

  it('refuses what it cannot run, and keeps to the tenant', async () => {
    const post = (body: unknown, headers = ACME) =>
      call(stack, 'POST', '/v1/schedules', body, headers);
    const bad: [unknown, number, string][] = [
      [{ cron: 'every day', spec: spec() }, 400, 'cron'],
      [{ cron: '0 9 * * *', timezone: 'Mars/Olympus', spec: spec() }, 400, 'timezone'],
      [
        {
          cron: '0 9 * * *',
          spec: { ...spec(), environment: { secrets: { TOKEN: 'never-kept-0123' } } },
        },
        422,
        'spec',
      ],
    ];
    for (const [body, status, field] of bad) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(res.body.error.details.field).toBe(field);
      expect(JSON.stringify(res.body)).not.toContain('never-kept-0123');
    }
    expect((await post({ cron: '0 9 * * *' })).status).toBe(400);
    expect((await call(stack, 'GET', '/v1/schedules', undefined, ACME)).body.schedules).toEqual([]);

    const mine = await post({ cron: '0 9 * * 1', spec: spec() });
    expect(mine.status).toBe(201);
    expect(mine.body).toMatchObject({ timezone: 'UTC', paused: false });
    const theirs = await call(stack, 'GET', `/v1/schedules/${mine.body.id}`, undefined, OTHER);
    expect(theirs.status).toBe(404);
    expect((await call(stack, 'GET', '/v1/schedules', undefined, OTHER)).body.schedules).toEqual(
      [],
    );
    const deleted = await call(stack, 'DELETE', `/v1/schedules/${mine.body.id}`, undefined, OTHER);
    expect(deleted.status).toBe(404);
    expect(
      (await call(stack, 'GET', '/v1/schedules', undefined, ACME)).body.schedules,
    ).toHaveLength(1);
  });
});
