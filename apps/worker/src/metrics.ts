import { isTerminal, presentsSecret, type TaskEventBody } from '@patchbay/core';
import type { EventLog } from '@patchbay/store';
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WorkerMetricsSources {
  /** Sandbox containers of this worker that are running now (warm pool included). */
  runningSandboxes: () => Promise<number>;
  /** Tasks this worker is running now. */
  runningTasks: () => number;
  /** Sandboxes this worker keeps for follow-ups now (among the running ones). */
  keptSandboxes: () => number;
}

/** Most tasks whose timing is tracked at once; more means tasks left without an end event. */
const MAX_TRACKED = 10_000;

/**
 * The worker's Prometheus instruments, fed from the task event stream it writes: every fact the
 * metrics need (phase changes, the final status, token usage, tool calls, errors) is already an
 * event, so observing `append` measures the pipeline without threading metrics through it.
 */
export class WorkerMetrics {
  readonly registry = new Registry();
  private readonly taskDuration: Histogram<'status'>;
  private readonly phaseDuration: Histogram<'phase'>;
  private readonly tokens: Counter<'kind'>;
  private readonly modelCalls: Counter;
  private readonly toolCalls: Counter<'tool' | 'outcome'>;
  private readonly errors: Counter<'code' | 'phase'>;
  private readonly tasks = new Map<string, { started: number; phase?: string; since: number }>();

  constructor(sources: WorkerMetricsSources) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    this.taskDuration = new Histogram({
      name: 'patchbay_task_duration_seconds',
      help: 'Wall time of a task attempt on this worker, from running to its final status.',
      labelNames: ['status'] as const,
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200],
      registers,
    });
    this.phaseDuration = new Histogram({
      name: 'patchbay_phase_duration_seconds',
      help: 'Wall time of each task phase (fetch, provision, setup, agent, collect, verify, publish).',
      labelNames: ['phase'] as const,
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800],
      registers,
    });
    this.tokens = new Counter({
      name: 'patchbay_model_tokens_total',
      help: 'Model tokens used, by kind (input, cached_input, output, reasoning).',
      labelNames: ['kind'] as const,
      registers,
    });
    this.modelCalls = new Counter({
      name: 'patchbay_model_calls_total',
      help: 'Model turns (requests that returned).',
      registers,
    });
    this.toolCalls = new Counter({
      name: 'patchbay_tool_calls_total',
      help: 'Tool calls made by agents, by tool and outcome (ok, error).',
      labelNames: ['tool', 'outcome'] as const,
      registers,
    });
    this.errors = new Counter({
      name: 'patchbay_task_errors_total',
      help: 'Task errors by stable error code and the phase they happened in.',
      labelNames: ['code', 'phase'] as const,
      registers,
    });
    new Gauge({
      name: 'patchbay_sandboxes_running',
      help: "This worker's running sandbox containers (warm pool included).",
      registers,
      async collect() {
        // A Docker hiccup must not fail the whole scrape: the gauge keeps its last value.
        this.set(await sources.runningSandboxes().catch(() => Number.NaN));
      },
    });
    new Gauge({
      name: 'patchbay_sandboxes_kept',
      help: 'Sandboxes this worker keeps for follow-ups (counted in patchbay_sandboxes_running too).',
      registers,
      collect() {
        this.set(sources.keptSandboxes());
      },
    });
    new Gauge({
      name: 'patchbay_worker_tasks_running',
      help: 'Tasks this worker is running.',
      registers,
      collect() {
        this.set(sources.runningTasks());
      },
    });
  }

  /** Takes one appended event into account. `now` is injectable for tests. */
  observe(taskId: string, event: TaskEventBody, now = Date.now()): void {
    switch (event.type) {
      case 'status': {
        if (event.status === 'running') {
          if (!this.tasks.has(taskId) && this.tasks.size < MAX_TRACKED)
            this.tasks.set(taskId, { started: now, since: now });
          return;
        }
        if (!isTerminal(event.status)) return;
        const state = this.tasks.get(taskId);
        this.tasks.delete(taskId);
        if (event.error)
          this.errors.inc({ code: event.error.code, phase: event.phase ?? state?.phase ?? 'none' });
        if (!state) return;
        if (state.phase)
          this.phaseDuration.observe({ phase: state.phase }, (now - state.since) / 1000);
        this.taskDuration.observe({ status: event.status }, (now - state.started) / 1000);
        return;
      }
      case 'phase': {
        const state = this.tasks.get(taskId);
        if (!state) return;
        if (state.phase)
          this.phaseDuration.observe({ phase: state.phase }, (now - state.since) / 1000);
        state.phase = event.phase;
        state.since = now;
        return;
      }
      case 'usage':
        this.modelCalls.inc();
        this.tokens.inc({ kind: 'input' }, event.inputTokens);
        this.tokens.inc({ kind: 'cached_input' }, event.cachedInputTokens);
        this.tokens.inc({ kind: 'output' }, event.outputTokens);
        this.tokens.inc({ kind: 'reasoning' }, event.reasoningTokens);
        return;
      case 'tool_output':
        this.toolCalls.inc({ tool: event.name, outcome: event.ok ? 'ok' : 'error' });
        return;
      default:
        return;
    }
  }

  /** The event log, observed: whatever is appended successfully is also counted here. */
  observing(events: EventLog): EventLog {
    return {
      append: async (taskId, body) => {
        const seq = await events.append(taskId, body);
        for (const event of 'type' in body ? [body] : body) this.observe(taskId, event);
        return seq;
      },
      read: (taskId, options) => events.read(taskId, options),
      follow: (taskId, options) => events.follow(taskId, options),
      archive: (taskId) => events.archive(taskId),
    };
  }
}

/**
 * Serves `GET /metrics` on its own small HTTP server: a worker has no API to hang it on, and
 * Prometheus scrapes each worker pod directly. With `token`, a scrape must present it
 * (a bearer token, or basic auth's password), as at the API's /metrics.
 */
export async function serveMetrics(
  registry: Registry,
  options: { host: string; port: number; token?: string | undefined },
): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (options.token !== undefined) {
      if (!presentsSecret(req.headers.authorization, options.token)) {
        res.writeHead(401, { 'www-authenticate': 'Bearer realm="metrics"' }).end('unauthorized\n');
        return;
      }
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: unknown) => res.writeHead(500).end(`${String(err)}\n`),
    );
  });
  server.listen(options.port, options.host);
  await once(server, 'listening');
  return server;
}
