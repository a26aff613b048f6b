import { describe, expect, it } from 'vitest';
import type { AddressInfo } from 'node:net';
import { WorkerMetrics, serveMetrics } from './metrics.js';

async function value(metrics: WorkerMetrics, name: string, labels: Record<string, string> = {}) {
  const metric = await metrics.registry.getSingleMetric(name)!.get();
  return metric.values
    .filter((v) => Object.entries(labels).every(([k, l]) => v.labels[k] === l))
    .map((v) => v.value);
}

describe('WorkerMetrics', () => {
  it('turns a task event stream into phase and task durations, tokens, tool calls and errors', async () => {
    const metrics = new WorkerMetrics({
      runningSandboxes: async () => 3,
      runningTasks: () => 1,
      keptSandboxes: () => 2,
    });
    const t = 't1';
    metrics.observe(t, { type: 'status', status: 'running', phase: null }, 1_000);
    metrics.observe(t, { type: 'phase', phase: 'fetch' }, 1_000);
    metrics.observe(t, { type: 'phase', phase: 'agent' }, 3_000);
    metrics.observe(t, {
      type: 'usage',
      inputTokens: 10,
      cachedInputTokens: 4,
      outputTokens: 5,
      reasoningTokens: 1,
    });
    metrics.observe(t, {
      type: 'tool_output',
      callId: 'c',
      name: 'shell',
      ok: false,
      exitCode: 2,
      durationMs: 5,
      output: '',
    });
    metrics.observe(
      t,
      {
        type: 'status',
        status: 'failed',
        phase: 'agent',
        error: { code: 'budget_exhausted', message: 'x' },
      },
      10_000,
    );

    expect(await value(metrics, 'patchbay_phase_duration_seconds', { phase: 'fetch' })).toContain(
      2,
    );
    expect(await value(metrics, 'patchbay_phase_duration_seconds', { phase: 'agent' })).toContain(
      7,
    );
    expect(await value(metrics, 'patchbay_task_duration_seconds', { status: 'failed' })).toContain(
      9,
    );
    expect(await value(metrics, 'patchbay_model_tokens_total', { kind: 'input' })).toEqual([10]);
    expect(await value(metrics, 'patchbay_model_calls_total')).toEqual([1]);
    expect(
      await value(metrics, 'patchbay_tool_calls_total', { tool: 'shell', outcome: 'error' }),
    ).toEqual([1]);
    expect(
      await value(metrics, 'patchbay_task_errors_total', {
        code: 'budget_exhausted',
        phase: 'agent',
      }),
    ).toEqual([1]);
    expect(await value(metrics, 'patchbay_sandboxes_running')).toEqual([3]);
    expect(await value(metrics, 'patchbay_sandboxes_kept')).toEqual([2]);
    expect(await value(metrics, 'patchbay_worker_tasks_running')).toEqual([1]);
  });
});

describe('serveMetrics', () => {
  it('answers scrapes that present the token as a bearer or as basic auth, and only those', async () => {
    const metrics = new WorkerMetrics({
      runningSandboxes: async () => 0,
      runningTasks: () => 0,
      keptSandboxes: () => 0,
    });
    const server = await serveMetrics(metrics.registry, {
      host: '127.0.0.1',
      port: 0,
      token: 'scrape-token',
    });
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
      const status = async (authorization?: string) =>
        (await fetch(url, authorization === undefined ? {} : { headers: { authorization } }))
          .status;
      const basic = (user: string, password: string) =>
        `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      expect(await status('Bearer scrape-token')).toBe(200);
      expect(await status(basic('prometheus', 'scrape-token'))).toBe(200);
      expect(await status()).toBe(401);
      expect(await status('Bearer scrape-tokeN')).toBe(401);
      expect(await status(basic('scrape-token', 'x'))).toBe(401);
      expect(await status('Bearer scrape-token trailing')).toBe(401);
    } finally {
      server.close();
    }
  });
});
