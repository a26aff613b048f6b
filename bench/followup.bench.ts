/**
 * Follow-up start (issue 13): `POST /v1/tasks/:id/messages` sent → the new turn's first tool call
 * (its `tool_call` event), for a ~2,000-file / ~20 MB repository with a setup script, against the
 * whole service on this machine (test/support/stack.ts). Warm: the worker kept the sandbox
 * (`PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS=600`), so the turn goes on in it. Cold: it kept none
 * (`0`), so the turn fetches, makes a sandbox, checks out the base, applies the patch so far and
 * runs setup again. A first turn's start (submit → first tool call) is measured beside them.
 *
 *   node --import tsx bench/followup.bench.ts
 *   BENCH_SAMPLES=5 node --import tsx bench/followup.bench.ts
 */
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { call, startStack, waitForTask } from '../test/support/stack.js';
import { bigRepo } from './fixtures.js';
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

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 15);
const TARGET_WARM_P50_MS = 150;

/** One follow-up's start, in ms from the moment the reply was sent. */
interface Start {
  total: number;
  /** Reply sent → the worker's `running` status event (API, queue pick-up). */
  queued: number;
  /** `running` → the `agent` phase (restore, or fetch + provision + setup). */
  prepare: number;
  /** `agent` phase → first tool call (AGENTS.md, the conversation, the model call). */
  agent: number;
}

function startOf(events: BenchEvent[], sentAt: number, turn: number): Start {
  const from = events.findIndex((e) => e.type === 'turn' && e.turn === turn);
  const rest = turn === 1 ? events : events.slice(from);
  const at = (pred: (e: BenchEvent) => boolean): number => eventTime(rest, pred);
  const running = at((e) => e.type === 'status' && e.status === 'running');
  const agent = at((e) => e.type === 'phase' && e.phase === 'agent');
  const toolCall = at((e) => e.type === 'tool_call');
  return {
    total: toolCall - sentAt,
    queued: running - sentAt,
    prepare: agent - running,
    agent: toolCall - agent,
  };
}

async function measure(
  keepAliveSeconds: number,
): Promise<{ first: Start[]; next: Start[]; load: string }> {
  const stack = await startStack({
    repos: { 'big.git': bigRepo(2000, 10_000) },
    script: scenarioScript({ first: steps([shell('true')]), next: steps([shell('true')]) }),
    env: {
      PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: String(keepAliveSeconds),
      PATCHBAY_MAX_ACTIVE_TASKS: '1000',
      PATCHBAY_REF_REFRESH_SECONDS: '60',
    },
  });
  try {
    const submit = async (): Promise<{ id: string; sentAt: number }> => {
      const sentAt = Date.now();
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('big.git'), ref: 'main' },
        prompt: 'SCENARIO:first',
        environment: { setup: 'true' },
      });
      if (res.status !== 202) throw new Error(`submit failed: ${JSON.stringify(res.body)}`);
      return { id: res.body.id as string, sentAt };
    };
    // The first task makes the mirror (a full clone); it is not counted.
    await waitForTask(stack, (await submit()).id);
    const first: Start[] = [];
    const next: Start[] = [];
    for (let i = 0; i < SAMPLES; i++) {
      const { id, sentAt } = await submit();
      if ((await waitForTask(stack, id)).status !== 'succeeded') throw new Error('turn 1 failed');
      first.push(startOf(await eventsOf(stack, id), sentAt, 1));
      const replyAt = Date.now();
      const res = await call(stack, 'POST', `/v1/tasks/${id}/messages`, {
        prompt: 'SCENARIO:next',
      });
      if (res.status !== 202) throw new Error(`reply failed: ${JSON.stringify(res.body)}`);
      const done = await waitForTask(stack, id);
      if (done.status !== 'succeeded') throw new Error(`turn 2 ${done.status}`);
      if (done.turns[1].warm !== keepAliveSeconds > 0) throw new Error('turn 2 ran the other way');
      next.push(startOf(await eventsOf(stack, id), replyAt, 2));
    }
    return { first, next, load: load() };
  } finally {
    await stack.close();
  }
}

function row(label: string, starts: Start[]): string {
  const p = (pick: (s: Start) => number) => fmt(stats(starts.map(pick)).p50);
  const total = stats(starts.map((s) => s.total));
  return `| ${label} | ${fmt(total.p50)} | ${fmt(total.p95)} | ${p((s) => s.queued)} | ${p((s) => s.prepare)} | ${p((s) => s.agent)} |`;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = load();
  log('follow-up start, warm (keep-alive 600 s)…');
  const warm = await measure(600);
  log('follow-up start, cold (keep-alive 0)…');
  const cold = await measure(0);
  const warmP50 = stats(warm.next.map((s) => s.total)).p50;
  await writeSection('followup', [
    ...header(
      'Follow-up start (issue 13)',
      'node --import tsx bench/followup.bench.ts',
      started,
      loadAtStart,
    ),
    `- What: reply sent (\`POST /v1/tasks/:id/messages\`) → the turn's first \`tool_call\` event, for a 2,000-file / ~20 MB repository with \`setup: true\`; ${SAMPLES} tasks per row, each a fresh task whose first turn made one tool call. Event times are written by the worker on this machine; the reply time is taken by the client just before it sends. Phases are p50s of their own.`,
    `- Warm: \`PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS=600\`, the turn goes on in the kept sandbox (workspace put back to the collected tree, no fetch, no setup). Cold: \`0\`, a new sandbox, checkout, the patch so far applied, setup again (the mirror is warm and the ref answered from it). Load average at the end of each: warm ${warm.load}, cold ${cold.load}.`,
    '',
    '| start | p50 | p95 | reply → running | running → agent | agent → first tool call |',
    '|---|---|---|---|---|---|',
    row('follow-up, warm (kept sandbox)', warm.next),
    row('follow-up, cold (rebuilt)', cold.next),
    row('first turn (submit → first tool call), same run', [...warm.first, ...cold.first]),
    '',
    `Target: warm follow-up start p50 ≤ ${TARGET_WARM_P50_MS} ms: ${verdict(warmP50 <= TARGET_WARM_P50_MS)} (${fmt(warmP50)}).`,
  ]);
}

await main();
