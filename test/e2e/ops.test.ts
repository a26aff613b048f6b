import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, freePort, startStack, waitForTask } from '../support/stack.js';

const METRICS_TOKEN = 'metrics-token-0123456789';
const ADMIN_KEY = 'admin-key-0123456789abcdef';

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) => {
        await repo.commit({ 'README.md': '# Demo\n' });
      },
    },
    script: scenarioScript({ work: steps([shell('echo hi > out.txt')]) }),
    env: {
      PATCHBAY_METRICS_TOKEN: METRICS_TOKEN,
      PATCHBAY_ADMIN_KEY: ADMIN_KEY,
      PATCHBAY_WORKER_METRICS_PORT: String(await freePort()),
    },
  });
});

afterAll(async () => {
  await stack?.close();
});

async function scrape(url: string, token?: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  return { status: res.status, text: await res.text() };
}

/** The value of one sample, e.g. `patchbay_tasks{status="queued"}`; undefined when absent. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('operations surface', () => {
  it('exposes task, queue, HTTP and worker metrics in Prometheus format behind the metrics token', async () => {
    const submit = (verify: string) =>
      call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:work',
        environment: { verify },
      });
    const [good, bad] = await Promise.all([submit('test -f out.txt'), submit('false')]);
    expect((await waitForTask(stack, good.body.id)).status).toBe('succeeded');
    expect((await waitForTask(stack, bad.body.id)).status).toBe('failed');

    expect((await scrape(`${stack.url}/metrics`)).status).toBe(401);
    expect((await scrape(`${stack.url}/metrics`, 'wrong-token-0123456789')).status).toBe(401);
    const api = await scrape(`${stack.url}/metrics`, METRICS_TOKEN);
    expect(api.status).toBe(200);
    expect(sample(api.text, 'patchbay_tasks{status="succeeded"}')).toBe(1);
    expect(sample(api.text, 'patchbay_tasks{status="failed"}')).toBe(1);
    expect(sample(api.text, 'patchbay_tasks{status="running"}')).toBe(0);
    expect(sample(api.text, 'patchbay_queue_jobs{state="waiting"}')).toBe(0);
    expect(sample(api.text, 'patchbay_metrics_redis_up')).toBe(1);
    expect(
      sample(
        api.text,
        'patchbay_http_request_duration_seconds_count{method="POST",route="/v1/tasks",status_code="202"}',
      ),
    ).toBe(2);
    expect(api.text).toContain('# TYPE patchbay_http_request_duration_seconds histogram');

    const workerUrl = `${stack.worker!.metricsUrl!}/metrics`;
    expect((await scrape(workerUrl)).status).toBe(401);
    const worker = await scrape(workerUrl, METRICS_TOKEN);
    expect(worker.status).toBe(200);
    expect(sample(worker.text, 'patchbay_task_duration_seconds_count{status="succeeded"}')).toBe(1);
    expect(sample(worker.text, 'patchbay_task_duration_seconds_count{status="failed"}')).toBe(1);
    for (const phase of ['fetch', 'provision', 'agent', 'collect', 'verify']) {
      expect(
        sample(worker.text, `patchbay_phase_duration_seconds_count{phase="${phase}"}`),
        phase,
      ).toBe(2);
    }
    expect(sample(worker.text, 'patchbay_tool_calls_total{tool="shell",outcome="ok"}')).toBe(2);
    expect(sample(worker.text, 'patchbay_model_calls_total')).toBe(4);
    expect(sample(worker.text, 'patchbay_model_tokens_total{kind="input"}')).toBeGreaterThan(0);
    // The verdict is reached after the verify phase; the label is the phase the task ended in.
    expect(worker.text).toMatch(
      /^patchbay_task_errors_total\{code="verify_failed",phase="[a-z]+"\} 1$/m,
    );
    expect(sample(worker.text, 'patchbay_sandboxes_running')).toBe(0);
    // A task's record ends before its job does (the job completes when the pipeline returns),
    // so the gauge may still count it for a moment after the status was read.
    await expect
      .poll(async () =>
        sample((await scrape(workerUrl, METRICS_TOKEN)).text, 'patchbay_worker_tasks_running'),
      )
      .toBe(0);
  });

  it('serves the queue dashboard only with the admin key', async () => {
    const page = `${stack.url}/admin/queues`;
    const without = await fetch(page);
    expect(without.status).toBe(401);
    expect(without.headers.get('www-authenticate')).toMatch(/^Basic /);
    expect((await fetch(page, { headers: { authorization: 'Bearer not-the-key' } })).status).toBe(
      401,
    );
    // A tenant API key is not an admin key (this stack has no tenant keys; any bearer is refused).
    const withBearer = await fetch(page, { headers: { authorization: `Bearer ${ADMIN_KEY}` } });
    expect(withBearer.status).toBe(200);
    expect(withBearer.headers.get('content-type')).toMatch(/^text\/html/);
    // The dashboard's JSON API (which can retry and remove jobs) is behind the same key.
    expect((await fetch(`${page}/api/queues`)).status).toBe(401);
    const basic = `Basic ${Buffer.from(`admin:${ADMIN_KEY}`).toString('base64')}`;
    const queues = await fetch(`${page}/api/queues`, { headers: { authorization: basic } });
    expect(queues.status).toBe(200);
    const body = (await queues.json()) as { queues: { name: string }[] };
    expect(body.queues.map((q) => q.name)).toEqual(['tasks']);
  });
});

describe('operations surface with defaults', () => {
  let bare: Stack;
  beforeAll(async () => {
    bare = await startStack({ worker: false });
  });
  afterAll(async () => {
    await bare?.close();
  });

  it('leaves /metrics open without a token and has no dashboard without an admin key', async () => {
    const metrics = await scrape(`${bare.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.text).toContain('patchbay_tasks{status="queued"} 0');
    expect((await fetch(`${bare.url}/admin/queues`)).status).toBe(404);
  });
});
