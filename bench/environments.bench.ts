/**
 * Cached environments (issue 16): submit → first tool call for a task whose setup installs real
 * dependencies, the first time (setup runs, the snapshot is taken) against a second task with the
 * same key (the snapshot is laid over a fresh checkout, setup skipped). Two projects:
 *
 * - node: a small express app with the usual test and lint tools (bench/fixtures/node-app), whose
 *   setup is `npm ci` of its real dependency tree from the npm registry (373 packages);
 * - python: a stdlib-only project (bench/fixtures/py-app) whose setup makes a virtualenv, builds
 *   a SQLite index and compiles the sources (pip is not reachable here).
 *
 *   node --import tsx bench/environments.bench.ts
 *   BENCH_SAMPLES=5 node --import tsx bench/environments.bench.ts
 */
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RepoBuilder } from '../test/support/git-server.js';
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../test/support/stack.js';
import {
  type BenchEvent,
  eventTime,
  eventsOf,
  fmt,
  header,
  load,
  log,
  stats,
  verdict,
  writeSection,
} from './support.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);
const TARGET_READY_MS = 1500;
const fixtures = fileURLToPath(new URL('./fixtures/', import.meta.url));

const PROJECTS = {
  node: {
    repo: 'node-app',
    setup: 'npm ci --ignore-scripts --no-audit --no-fund --loglevel=error',
    check: 'node -e "require(\'express\')"',
  },
  python: {
    repo: 'py-app',
    setup: 'python3 -m venv --without-pip .venv && mkdir -p build && .venv/bin/python build.py',
    check:
      ".venv/bin/python -c \"import sqlite3; sqlite3.connect('build/index.sqlite').execute('select 1 from words')\"",
  },
} as const;

/** A repository of a fixture directory's files, one commit. */
function fixtureRepo(name: string): RepoBuilder {
  return async (repo) => {
    const root = join(fixtures, name);
    const files: Record<string, string> = {};
    const walk = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else files[relative(root, path)] = await readFile(path, 'utf8');
      }
    };
    await walk(root);
    await repo.commit(files);
  };
}

interface Start {
  /** Submit → first tool call. */
  ready: number;
  /** `running` → `agent` phase: fetch, provision, setup (or the snapshot laid down). */
  prepare: number;
  /** The setup phase (the script and taking the snapshot, or laying it down). */
  setup: number;
  /** After the setup script's end → the agent phase: taking the snapshot (first runs only). */
  snapshot: number | null;
  cached: boolean;
}

async function runTask(stack: Stack, project: keyof typeof PROJECTS): Promise<Start> {
  const p = PROJECTS[project];
  const sentAt = Date.now();
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url(`${p.repo}.git`), ref: 'main' },
    prompt: 'SCENARIO:look',
    environment: { setup: p.setup, verify: p.check },
  });
  if (res.status !== 202) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
  const task = await waitForTask(stack, res.body.id, {}, 600_000);
  if (task.status !== 'succeeded')
    throw new Error(`${project} task ${task.status}: ${JSON.stringify(task.error)}`);
  const events = (await eventsOf(stack, task.id)) as (BenchEvent & { command?: string })[];
  const at = (pred: (e: BenchEvent & { command?: string }) => boolean) => eventTime(events, pred);
  const agent = at((e) => e.type === 'phase' && e.phase === 'agent');
  const setupEnd = events.find((e) => e.type === 'command' && e.phase === 'setup');
  return {
    ready: at((e) => e.type === 'tool_call') - sentAt,
    prepare: agent - at((e) => e.type === 'status' && e.status === 'running'),
    setup: task.timings.setupMs,
    snapshot: setupEnd === undefined ? null : agent - Date.parse(setupEnd.time),
    cached: task.timings.setupCached,
  };
}

async function measure(project: keyof typeof PROJECTS) {
  const stack = await startStack({
    repos: { [`${PROJECTS[project].repo}.git`]: fixtureRepo(PROJECTS[project].repo) },
    script: scenarioScript({ look: steps([shell('true')]) }),
    // A warm container per image, as the service runs by default.
    env: {
      PATCHBAY_MAX_ACTIVE_TASKS: '100',
      PATCHBAY_TASK_TIMEOUT_SECONDS: '900',
      PATCHBAY_WARM_POOL_SIZE: '1',
      PATCHBAY_ENV_CACHE_BYTES: '10g',
    },
  });
  try {
    const first: Start[] = [];
    const second: Start[] = [];
    const sizes: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await call(stack, 'DELETE', '/v1/environments');
      const a = await runTask(stack, project);
      const b = await runTask(stack, project);
      if (a.cached || !b.cached) throw new Error(`${project}: expected a miss then a hit`);
      first.push(a);
      second.push(b);
      const { body } = await call(stack, 'GET', '/v1/environments');
      sizes.push(body.environments[0].bytes as number);
      log(`${project} ${i + 1}/${SAMPLES}: first ${fmt(a.ready)}, second ${fmt(b.ready)}`);
    }
    return { first, second, sizes, load: load() };
  } finally {
    await stack.close();
  }
}

function row(label: string, starts: Start[]): string {
  const p50 = (pick: (s: Start) => number | null) => {
    const values = starts.map(pick).filter((v): v is number => v !== null);
    return values.length === 0 ? '—' : fmt(stats(values).p50);
  };
  return `| ${label} | ${p50((s) => s.ready)} | ${p50((s) => s.prepare)} | ${p50((s) => s.setup)} | ${p50((s) => s.snapshot)} |`;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = load();
  const lines: string[] = [];
  const verdicts: string[] = [];
  const results: Record<string, Awaited<ReturnType<typeof measure>>> = {};
  for (const project of ['node', 'python'] as const) {
    log(`${project}: first task vs second task with the same key…`);
    results[project] = await measure(project);
  }
  for (const [project, r] of Object.entries(results)) {
    const first = stats(r.first.map((s) => s.ready)).p50;
    const second = stats(r.second.map((s) => s.ready)).p50;
    const mib = stats(r.sizes).p50 / 2 ** 20;
    lines.push(
      row(`${project}, first task (setup runs, snapshot taken)`, r.first),
      row(`${project}, second task (same key: from the snapshot)`, r.second),
    );
    verdicts.push(
      `- ${project}: second task ready p50 ${fmt(second)} vs first ${fmt(first)} (${(second / first).toFixed(3)}×); snapshot ${mib.toFixed(2)} MiB compressed. Target ≤ ${TARGET_READY_MS} ms: ${verdict(second <= TARGET_READY_MS)}; ≤ 1/10 of the first: ${verdict(second <= first / 10)}. Load at the end: ${r.load}.`,
    );
  }
  await writeSection('environments', [
    ...header(
      'Cached environments (issue 16)',
      'node --import tsx bench/environments.bench.ts',
      started,
      loadAtStart,
    ),
    `- What: submit → the task's first \`tool_call\` event, on the whole service on this machine (test/support/stack.ts), ${SAMPLES} pairs per project, the cache dropped before each pair. node: bench/fixtures/node-app, setup \`${PROJECTS.node.setup}\` from the npm registry. python: bench/fixtures/py-app, setup \`${PROJECTS.python.setup}\`. Each task's verify checks what setup made is there. "snapshot" is the setup command's end → the agent phase (taking and storing the snapshot).`,
    '',
    '| task | submit → first tool call (p50) | running → agent | setup phase | snapshot |',
    '|---|---|---|---|---|',
    ...lines,
    '',
    ...verdicts,
  ]);
}

await main();
