/**
 * Agent runtimes (issue 18):
 *
 * - the model gateway's cost per model call: the same streamed Responses call through the real
 *   `openai` SDK, straight to the scripted model server and through `ModelGateway` in front of
 *   it (both on 127.0.0.1), alternating, one call at a time;
 * - the Codex runtime's start: on the whole service, the agent phase's start → the task's first
 *   tool call, for a task of the `codex` runtime (Codex CLI starts in the sandbox, joins the
 *   gateway's network, asks the model) against one of the `patchbay` runtime, same script.
 *
 *   node --import tsx bench/gateway.bench.ts
 *   BENCH_CALLS=400 BENCH_SAMPLES=5 node --import tsx bench/gateway.bench.ts
 */
import { startScriptedModelServer, type ScriptedTurn } from '@patchbay/agent/testing';
import { ModelGateway } from '@patchbay/gateway';
import OpenAI from 'openai';
import { performance } from 'node:perf_hooks';
import { scenarioScript, shell, steps } from '../test/support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../test/support/stack.js';
import { eventTime, eventsOf, fmt, header, load, log, stats, writeSection } from './support.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 200);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 3);

async function gatewayOverhead(): Promise<{ direct: number[]; gateway: number[] }> {
  const answer: ScriptedTurn = {
    text: 'A short answer of a few words.',
    usage: { inputTokens: 50 },
  };
  const model = await startScriptedModelServer({
    script: {
      *[Symbol.iterator]() {
        for (;;) yield answer;
      },
    },
    appendOnly: false,
    apiKey: 'sk-bench',
  });
  const gateway = await ModelGateway.start({
    upstream: { baseUrl: model.url, apiKey: 'sk-bench' },
    host: '127.0.0.1',
  });
  const grant = gateway.grant('bench', { maxTokens: 1e9, maxTurns: 1e9 });
  const clients = {
    direct: new OpenAI({ baseURL: model.url, apiKey: 'sk-bench', maxRetries: 0 }),
    gateway: new OpenAI({ baseURL: gateway.url, apiKey: grant.token, maxRetries: 0 }),
  };
  const times = { direct: [] as number[], gateway: [] as number[] };
  const once = async (which: 'direct' | 'gateway'): Promise<number> => {
    const started = performance.now();
    const stream = await clients[which].responses.create({
      model: 'bench',
      input: 'hello',
      store: false,
      stream: true,
    });
    for await (const event of stream) if (event.type === 'response.completed') break;
    return performance.now() - started;
  };
  try {
    for (let i = 0; i < 20; i++) await once(i % 2 ? 'direct' : 'gateway'); // warm-up
    for (let i = 0; i < CALLS; i++) {
      times.direct.push(await once('direct'));
      times.gateway.push(await once('gateway'));
    }
  } finally {
    await gateway.close();
    await model.close();
  }
  return times;
}

async function runtimeStart(stack: Stack, runtime: 'patchbay' | 'codex'): Promise<number> {
  const { body } = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt: `SCENARIO:${runtime} go`,
    agent: { runtime },
  });
  const task = await waitForTask(stack, body.id as string, {}, 180_000);
  if (task.status !== 'succeeded') throw new Error(`${runtime} task ${task.status}`);
  const events = await eventsOf(stack, task.id as string);
  const agent = eventTime(events, (e) => e.type === 'phase' && e.phase === 'agent');
  return eventTime(events, (e) => e.type === 'tool_call') - agent;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadAtStart = load();
  log(`gateway: ${CALLS} calls each way…`);
  const overhead = await gatewayOverhead();
  const direct = stats(overhead.direct);
  const through = stats(overhead.gateway);

  log(`runtimes: ${SAMPLES} tasks each…`);
  const stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    script: scenarioScript({
      patchbay: steps([shell('true')]),
      codex: steps([{ name: 'exec_command', arguments: { cmd: 'true' } }]),
    }),
  });
  const starts = { patchbay: [] as number[], codex: [] as number[] };
  try {
    await runtimeStart(stack, 'codex'); // the first sets up the network and the gateway
    for (let i = 0; i < SAMPLES; i++) {
      starts.codex.push(await runtimeStart(stack, 'codex'));
      starts.patchbay.push(await runtimeStart(stack, 'patchbay'));
    }
  } finally {
    await stack.close();
  }
  const codex = stats(starts.codex);
  const loop = stats(starts.patchbay);

  await writeSection('gateway', [
    ...header(
      'Agent runtimes: gateway overhead, Codex start (issue 18)',
      'node --import tsx bench/gateway.bench.ts',
      started,
      loadAtStart,
    ),
    `- What: (1) a streamed \`responses.create\` through the real \`openai\` SDK, read to \`response.completed\`, ${CALLS} calls each way alternating, to the scripted model server directly and through \`ModelGateway\` (both on 127.0.0.1, the gateway counting usage from a tee of the stream). (2) On the whole service (test/support/stack.ts): the agent phase's start → the first \`tool_call\` event, for ${SAMPLES} tasks of each runtime with the same one-command script (the first codex task, which sets up the network and the gateway, not counted).`,
    '',
    '| measure | p50 | p95 | mean |',
    '|---|---|---|---|',
    `| model call, direct | ${fmt(direct.p50)} | ${fmt(direct.p95)} | ${fmt(direct.mean)} |`,
    `| model call, through the gateway | ${fmt(through.p50)} | ${fmt(through.p95)} | ${fmt(through.mean)} |`,
    `| agent phase → first tool call, \`patchbay\` runtime | ${fmt(loop.p50)} | ${fmt(loop.p95)} | ${fmt(loop.mean)} |`,
    `| agent phase → first tool call, \`codex\` runtime | ${fmt(codex.p50)} | ${fmt(codex.p95)} | ${fmt(codex.mean)} |`,
    '',
    `- Gateway overhead per call: p50 +${fmt(through.p50 - direct.p50)} (${(through.p50 / direct.p50).toFixed(2)}× the direct call).`,
    `- Codex runtime start: p50 ${fmt(codex.p50)} to its first command, +${fmt(codex.p50 - loop.p50)} over Patchbay's own loop (the CLI starting in the sandbox, joining the network, its larger first request).`,
  ]);
}

await main();
