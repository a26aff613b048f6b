/**
 * Task benchmarks (issue 7, figures 2–4), each against the whole service on this machine
 * (test/support/stack.ts: git server, scripted model, API, worker on 127.0.0.1):
 *
 * - Task start: job picked up (the `running` status event) → the agent's first tool call answered
 *   (its `tool_output` event), for a ~2,000-file / ~20 MB repository whose mirror is warm, with the
 *   warm pool and cold, split by phase; with the branch answered from the mirror
 *   (`PATCHBAY_REF_REFRESH_SECONDS`, BENCH_REF_REFRESH_SECONDS, default 60) and with a fetch every
 *   task (0, the service's default).
 * - Tool call overhead: a no-op `shell` through the whole agent loop (in process, real sandbox,
 *   scripted model over HTTP), minus the time spent inside model calls.
 * - End to end: 20 tool calls and a 3-file patch, submit → `GET /patch` answers 200.
 *
 *   node --import tsx bench/task.bench.ts
 *   BENCH_SAMPLES=5 node --import tsx bench/task.bench.ts
 *   BENCH_PARTS=warm,e2e node --import tsx bench/task.bench.ts   (some parts only; printed, not written)
 *
 * Parts: overhead, warm, cold (ref refresh window on), warm-fetch, cold-fetch (window 0), e2e.
 */
import {
  Agent,
  createModelClient,
  type ModelClient,
  type TurnRequest,
  type TurnResult,
} from '@patchbay/agent';
import { startScriptedModelServer, type ScriptedCall } from '@patchbay/agent/testing';
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../test/support/stack.js';
import { bigRepo, workCalls } from './fixtures.js';
import {
  type BenchEvent,
  benchSandboxes,
  eventTime,
  eventsOf,
  fmt,
  header,
  load,
  log,
  sleep,
  stats,
  writeSection,
} from './support.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 15);
const REPO_FILES = 2000;
const REPO_FILE_BYTES = 10_000;
const IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';
/** `PATCHBAY_REF_REFRESH_SECONDS` of the task start rows that skip the fetch, and of end to end. */
const REFRESH_SECONDS = Number(process.env.BENCH_REF_REFRESH_SECONDS ?? 60);
const ALL_PARTS = [
  'overhead',
  'warm',
  'warm-plain',
  'warm-new-commit',
  'cold',
  'warm-fetch',
  'cold-fetch',
  'e2e',
] as const;

interface StartSetup {
  /** `PATCHBAY_WARM_POOL_SIZE` */
  pool: number;
  /** `PATCHBAY_REF_REFRESH_SECONDS` */
  refresh: number;
  /** `PATCHBAY_WARM_POOL_PRELOADS` */
  preloads: number;
  /** A commit is pushed before each task, so a preloaded checkout is always of the one before. */
  newCommit?: boolean;
}

/** Task start parts. */
const START_PARTS: readonly (readonly [Part, StartSetup])[] = [
  ['warm', { pool: 2, refresh: REFRESH_SECONDS, preloads: 2 }],
  ['warm-plain', { pool: 2, refresh: REFRESH_SECONDS, preloads: 0 }],
  ['warm-new-commit', { pool: 2, refresh: 0, preloads: 2, newCommit: true }],
  ['cold', { pool: 0, refresh: REFRESH_SECONDS, preloads: 0 }],
  ['warm-fetch', { pool: 2, refresh: 0, preloads: 2 }],
  ['cold-fetch', { pool: 0, refresh: 0, preloads: 0 }],
];
type Part = (typeof ALL_PARTS)[number];
const PARTS = new Set<Part>(
  process.env.BENCH_PARTS === undefined
    ? ALL_PARTS
    : ALL_PARTS.filter((p) => process.env.BENCH_PARTS!.split(',').includes(p)),
);

const SCENARIOS = {
  first: steps([{ name: 'shell', arguments: { command: ['true'] } }]),
  e2e: steps(workCalls(20)),
};

async function submit(stack: Stack, prompt: string): Promise<string> {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('big.git'), ref: 'main' },
    prompt,
  });
  if (res.status !== 202) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** Phase split of one task start, in ms from the `running` event. */
interface Start {
  total: number;
  fetch: number;
  provision: number;
  agentToFirstCall: number;
  firstCall: number;
}

function startOf(events: BenchEvent[]): Start {
  const at = (pred: (e: BenchEvent) => boolean): number => eventTime(events, pred);
  const running = at((e) => e.type === 'status' && e.status === 'running');
  const provision = at((e) => e.type === 'phase' && e.phase === 'provision');
  const agent = at((e) => e.type === 'phase' && e.phase === 'agent');
  const toolCall = at((e) => e.type === 'tool_call');
  const toolOutput = at((e) => e.type === 'tool_output');
  return {
    total: toolOutput - running,
    fetch: provision - running,
    provision: agent - provision,
    agentToFirstCall: toolCall - agent,
    firstCall: toolOutput - toolCall,
  };
}

interface StartRun {
  starts: Start[];
  /** Tasks whose workspace was preloaded (`timings.workspacePreloaded`). */
  preloaded: number;
  load: string;
}

async function taskStart(setup: StartSetup): Promise<StartRun> {
  const { pool, refresh, preloads, newCommit = false } = setup;
  const stack = await startStack({
    repos: { 'big.git': bigRepo(REPO_FILES, REPO_FILE_BYTES) },
    script: scenarioScript(SCENARIOS),
    env: {
      PATCHBAY_WARM_POOL_SIZE: String(pool),
      PATCHBAY_WARM_POOL_PRELOADS: String(preloads),
      PATCHBAY_MAX_ACTIVE_TASKS: '1000',
      PATCHBAY_REF_REFRESH_SECONDS: String(refresh),
    },
  });
  try {
    // The first task makes the mirror (a full clone); it is not counted.
    const primed = await waitForTask(stack, await submit(stack, 'SCENARIO:first'));
    if (primed.status !== 'succeeded') throw new Error(`priming task ${primed.status}`);
    const starts: Start[] = [];
    let preloaded = 0;
    for (let i = 0; i < SAMPLES; i++) {
      // Time for the pool to refill (and the previous container to go), as between real tasks.
      await sleep(pool > 0 ? 1500 : 300);
      if (newCommit) await stack.git.repo('big.git').commit({ 'moving.txt': `${i}\n` });
      const id = await submit(stack, 'SCENARIO:first');
      const done = await waitForTask(stack, id);
      if (done.status !== 'succeeded') throw new Error(`task ${done.status}`);
      if (done.timings.workspacePreloaded === true) preloaded += 1;
      starts.push(startOf(await eventsOf(stack, id)));
    }
    return { starts, preloaded, load: load() };
  } finally {
    await stack.close();
  }
}

async function endToEnd(): Promise<{ ms: number[]; load: string }> {
  const stack = await startStack({
    repos: { 'big.git': bigRepo(REPO_FILES, REPO_FILE_BYTES) },
    script: scenarioScript(SCENARIOS),
    env: {
      PATCHBAY_WARM_POOL_SIZE: '1',
      PATCHBAY_MAX_ACTIVE_TASKS: '1000',
      PATCHBAY_REF_REFRESH_SECONDS: String(REFRESH_SECONDS),
      // The service's default (the test stack keeps none): a task's end hands its sandbox to
      // the keeper rather than waiting for its removal.
      PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: '600',
    },
  });
  try {
    await waitForTask(stack, await submit(stack, 'SCENARIO:first'));
    const ms: number[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(1500);
      const t = performance.now();
      const id = await submit(stack, 'SCENARIO:e2e');
      for (;;) {
        const res = await fetch(`${stack.url}/v1/tasks/${id}/patch`);
        const text = await res.text();
        if (res.status === 200) {
          ms.push(performance.now() - t);
          if (!text.includes('+alpha, edited')) throw new Error('patch lacks the edit');
          break;
        }
        if (performance.now() - t > 60_000) throw new Error('no patch after 60 s');
        await sleep(10);
      }
      const done = await waitForTask(stack, id);
      if (done.status !== 'succeeded') throw new Error(`e2e task ${done.status}`);
    }
    return { ms, load: load() };
  } finally {
    await stack.close();
  }
}

/** Wraps a model client to add up the time spent inside model calls. */
function timed(inner: ModelClient): ModelClient & { spentMs: number } {
  const client = {
    wire: inner.wire,
    defaultModel: inner.defaultModel,
    spentMs: 0,
    async turn(request: TurnRequest): Promise<TurnResult> {
      const t = performance.now();
      try {
        return await inner.turn(request);
      } finally {
        client.spentMs += performance.now() - t;
      }
    },
  };
  return client;
}

interface Overhead {
  perCall: number[];
  modelPerTurn: number[];
}

async function toolOverhead(): Promise<{ argv: Overhead; string: Overhead; load: string }> {
  const CALLS = 20;
  const noop = (command: string | string[]): ScriptedCall => ({
    name: 'shell',
    arguments: { command },
  });
  const model = await startScriptedModelServer({
    script: scenarioScript({
      argv: steps(Array.from({ length: CALLS }, () => noop(['true']))),
      string: steps(Array.from({ length: CALLS }, () => shell('true'))),
    }),
    appendOnly: false,
  });
  const sandboxes = benchSandboxes();
  const provider = sandboxes.provider;
  try {
    const client = timed(
      createModelClient({ model: 'gpt-test', baseURL: model.url, apiKey: 'sk-bench' }),
    );
    const agent = new Agent({ model: client });
    const sandbox = await provider.create({ image: IMAGE, taskId: 'bench-tool' });
    const result: Record<'argv' | 'string', Overhead> = {
      argv: { perCall: [], modelPerTurn: [] },
      string: { perCall: [], modelPerTurn: [] },
    };
    const runs = Math.max(3, Math.ceil(SAMPLES / 2));
    for (let i = 0; i < runs + 1; i++) {
      for (const kind of ['argv', 'string'] as const) {
        client.spentMs = 0;
        const t = performance.now();
        const outcome = await agent.run({
          sandbox,
          prompt: `SCENARIO:${kind}`,
          model: { name: 'gpt-test', reasoningEffort: null },
          limits: { maxTurns: 100, maxTokens: 10_000_000, deadline: Date.now() + 120_000 },
          signal: new AbortController().signal,
          emit: () => undefined,
        });
        const wall = performance.now() - t;
        if (outcome.usage.toolCalls !== CALLS) throw new Error(`${outcome.usage.toolCalls} calls`);
        if (i === 0) continue; // warm-up
        result[kind].perCall.push((wall - client.spentMs) / CALLS);
        result[kind].modelPerTurn.push(client.spentMs / (CALLS + 1));
      }
    }
    await sandbox.destroy();
    return { ...result, load: load() };
  } finally {
    await sandboxes.close();
    await model.close();
  }
}

/** Runs only the parts named in BENCH_PARTS and prints them; RESULTS.md is left alone. */
async function someParts(): Promise<void> {
  if (PARTS.has('e2e')) {
    log(`end to end: ${SAMPLES} tasks`);
    const r = await endToEnd();
    const s = stats(r.ms);
    process.stdout.write(
      `e2e: ${r.ms.length} tasks, p50 ${fmt(s.p50)}, p95 ${fmt(s.p95)}; load after ${r.load}\n`,
    );
  }
  for (const [part, setup] of START_PARTS) {
    if (!PARTS.has(part)) continue;
    const loadBefore = load();
    log(`task start, ${part}: ${SAMPLES} tasks (load ${loadBefore})`);
    const r = await taskStart(setup);
    const cells = (['total', 'fetch', 'provision', 'agentToFirstCall', 'firstCall'] as const).map(
      (k) => {
        const s = stats(r.starts.map((x) => x[k]));
        return `${k} ${fmt(s.p50)} / ${fmt(s.p95)}`;
      },
    );
    process.stdout.write(
      `${part}: ${r.starts.length} tasks (${r.preloaded} preloaded), p50 / p95: ${cells.join(', ')}; load ${loadBefore} → ${r.load}\n`,
    );
  }
}

async function main(): Promise<void> {
  if (PARTS.size < ALL_PARTS.length) return someParts();
  const started = new Date();
  const loadStart = load();
  log('tool call overhead');
  const overhead = await toolOverhead();
  const runs = new Map<Part, StartRun>();
  for (const [part, setup] of START_PARTS) {
    log(`task start, ${part}: ${SAMPLES} tasks`);
    runs.set(part, await taskStart(setup));
  }
  const warm = runs.get('warm')!;
  const warmPlain = runs.get('warm-plain')!;
  const warmNewCommit = runs.get('warm-new-commit')!;
  const cold = runs.get('cold')!;
  const warmFetch = runs.get('warm-fetch')!;
  const coldFetch = runs.get('cold-fetch')!;
  log(`end to end: ${SAMPLES} tasks`);
  const e2e = await endToEnd();

  const startRow = (name: string, r: StartRun): string[] => {
    const col = (k: keyof Start): string => {
      const s = stats(r.starts.map((x) => x[k]));
      return `${fmt(s.p50)} / ${fmt(s.p95)}`;
    };
    return [
      `| ${name} | ${r.starts.length} (${r.preloaded}) | **${col('total')}** | ${col('fetch')} | ${col('provision')} | ${col('agentToFirstCall')} | ${col('firstCall')} | ${r.load} |`,
    ];
  };
  const warmTotal = stats(warm.starts.map((s) => s.total));
  const coldTotal = stats(cold.starts.map((s) => s.total));
  const ovArgv = stats(overhead.argv.perCall);
  const ovString = stats(overhead.string.perCall);
  const modelTurn = stats([...overhead.argv.modelPerTurn, ...overhead.string.modelPerTurn]);
  const e2eStats = stats(e2e.ms);
  const miss = (value: number, target: number): string =>
    value <= target ? 'met' : `**missed** by ${fmt(value - target)}`;

  await writeSection('task', [
    ...header(
      'Task start, tool call overhead, end to end (the whole service)',
      `${process.env.BENCH_SAMPLES ? `BENCH_SAMPLES=${SAMPLES} ` : ''}node --import tsx bench/task.bench.ts`,
      started,
      loadStart,
    ),
    `- Stack: \`test/support/stack.ts\` — git server (smart HTTP, \`git http-backend\`), scripted model (Responses API over HTTP), API and one worker (concurrency 1) in this process, Redis and Docker shared with the rest of the machine. Sandbox \`${IMAGE}\`, 1 GiB, no network.`,
    `- Repository: ${REPO_FILES} files of ${REPO_FILE_BYTES / 1000} kB (random hex, ~${((REPO_FILES * REPO_FILE_BYTES) / 1e6).toFixed(0)} MB) in one commit; the first task of each stack makes the mirror and is not counted, so every measured fetch finds the commit in the mirror.`,
    `- Ref refresh: the tasks name the branch \`main\`. Rows marked "ref from mirror" (and end to end) run with \`PATCHBAY_REF_REFRESH_SECONDS=${REFRESH_SECONDS}\` set by this benchmark, so after the first task the branch is answered from the mirror without a fetch; rows marked "fetch every task" run with \`0\`, the service's default, an incremental \`git fetch\` per task.`,
    '- The sandbox is made (or taken from the pool) while the ref is resolved; the fetch column is `running` → `provision` (ref resolved, sandbox being made beside it), the provision column the rest of the sandbox plus the tree going in.',
    '',
    '### Task start (job picked up → first tool call answered)',
    '',
    'From the `running` status event (written when the worker takes the job) to the first `tool_output` event, from event timestamps (stamped by Redis-side append; appends are batched, so a stamp can be up to one append round trip late). Each cell is p50 / p95.',
    '',
    '| sandbox, ref | tasks (preloaded) | total | fetch (resolve ref; sandbox made beside it) | provision (rest of sandbox + tree) | agent → first tool call (model turn) | first tool call (`["true"]`) | load after |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...startRow(
      `warm pool (\`PATCHBAY_WARM_POOL_SIZE=2\`, \`PATCHBAY_WARM_POOL_PRELOADS=2\`), ref from mirror`,
      warm,
    ),
    ...startRow(
      'warm pool, no preloads (`PATCHBAY_WARM_POOL_PRELOADS=0`), ref from mirror',
      warmPlain,
    ),
    ...startRow('warm pool, a new commit before every task (fetched)', warmNewCommit),
    ...startRow('cold (`PATCHBAY_WARM_POOL_SIZE=0`), ref from mirror', cold),
    ...startRow('warm pool, fetch every task', warmFetch),
    ...startRow('cold, fetch every task', coldFetch),
    '',
    "Preloaded: a pooled container waited with the repository at the task's base commit already checked out (`timings.workspacePreloaded`), so provision copied nothing. With a new commit before every task the preloaded checkout is of the commit before: provision empties it and checks out as without preloads.",
    '',
    `Targets p50 ≤ 300 ms with the warm pool — ${miss(warmTotal.p50, 300)} (p50 ${fmt(warmTotal.p50)}); ≤ 600 ms cold — ${miss(coldTotal.p50, 600)} (p50 ${fmt(coldTotal.p50)}); ref from the mirror (\`PATCHBAY_REF_REFRESH_SECONDS=${REFRESH_SECONDS}\`). Fetching every task: warm p50 ${fmt(stats(warmFetch.starts.map((x) => x.total)).p50)}, cold p50 ${fmt(stats(coldFetch.starts.map((x) => x.total)).p50)}.`,
    '',
    '### Tool call overhead (no-op `shell` through the agent loop)',
    '',
    `In process: \`Agent.run\` against a real sandbox and the scripted model server, 20 no-op shell calls per run (one call per turn, then a final message), ${overhead.argv.perCall.length} runs per kind after a warm-up. Overhead per call = (run wall time − time inside model calls) / 20; the model client is wrapped to add up its calls. Covers argument validation, the exec round trip, output capping, event building and conversation bookkeeping.`,
    '',
    '| command | runs × calls | overhead p50 | overhead p95 | mean |',
    '| --- | ---: | ---: | ---: | ---: |',
    `| \`["true"]\` (argv, no shell) | ${ovArgv.n} × 20 | ${fmt(ovArgv.p50)} | ${fmt(ovArgv.p95)} | ${fmt(ovArgv.mean)} |`,
    `| \`"true"\` (string, run with \`bash -lc\`) | ${ovString.n} × 20 | ${fmt(ovString.p50)} | ${fmt(ovString.p95)} | ${fmt(ovString.mean)} |`,
    `| (the model's own latency per turn, for comparison) | ${modelTurn.n} | ${fmt(modelTurn.p50)} | ${fmt(modelTurn.p95)} | ${fmt(modelTurn.mean)} |`,
    '',
    `Target ≤ 10 ms on top of the model: argv ${miss(ovArgv.p50, 10)} (p50 ${fmt(ovArgv.p50)}); string ${miss(ovString.p50, 10)} (p50 ${fmt(ovString.p50)}; most of it is \`bash -l\` starting inside the sandbox, see the sandbox section). Load after: ${overhead.load}.`,
    '',
    '### End to end (20 tool calls, 3-file patch; submit → patch downloadable)',
    '',
    `Warm pool of 1, warm mirror, \`PATCHBAY_REF_REFRESH_SECONDS=${REFRESH_SECONDS}\`; the client polls \`GET /v1/tasks/:id/patch\` every 10 ms from the moment the submit returns.`,
    '',
    '| tasks | p50 | p95 | mean | load after |',
    '| ---: | ---: | ---: | ---: | ---: |',
    `| ${e2eStats.n} | ${fmt(e2eStats.p50)} | ${fmt(e2eStats.p95)} | ${fmt(e2eStats.mean)} | ${e2e.load} |`,
    '',
    `Target p50 ≤ 2 s — ${miss(e2eStats.p50, 2000)}.`,
  ]);
}

await main();
