/**
 * API benchmark (issue 7, figure 1): `POST /v1/tasks` and `GET /v1/tasks/:id` under 50
 * concurrent connections, against a bare fastify + BullMQ server doing only `HSET` +
 * `queue.add` (resp. `HGETALL`), measured in the same run with autocannon. No worker runs, so
 * submitted tasks stay queued; the per-tenant rate limit and active-task cap are raised for the
 * run, and every key either server wrote is removed afterwards.
 *
 *   node --import tsx bench/api.bench.ts                     # 10 s per run
 *   BENCH_API_SECONDS=5 node --import tsx bench/api.bench.ts  # quicker
 *
 * autocannon runs as its own process so that the load generator and the server under test do
 * not share one event loop.
 */
import { execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRedis } from '@patchbay/queue';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { call, deleteKeys, freePort, startStack } from '../test/support/stack.js';
import { fmt, header, load, log, verdict, writeSection } from './support.js';

const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 10);
const CONNECTIONS = 50;
const AUTOCANNON = fileURLToPath(
  new URL('../node_modules/autocannon/autocannon.js', import.meta.url),
);
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Run {
  rps: number;
  p50: number;
  p90: number;
  p97_5: number;
  p99: number;
  non2xx: number;
  errors: number;
  load: string;
}

async function autocannon(url: string, post?: string, seconds = SECONDS): Promise<Run> {
  const args = [AUTOCANNON, '-c', String(CONNECTIONS), '-d', String(seconds), '--json'];
  if (post !== undefined)
    args.push('-m', 'POST', '-H', 'content-type=application/json', '-b', post);
  args.push(url);
  const { stdout } = await promisify(execFile)(process.execPath, args, {
    maxBuffer: 16 * 1024 * 1024,
  });
  const r = JSON.parse(stdout);
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p97_5: r.latency.p97_5,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    load: load(),
  };
}

/** The comparison: fastify + BullMQ doing only what the issue allows, nothing else. */
async function startBare(prefix: string): Promise<{ url: string; close(): Promise<void> }> {
  const redis = createRedis({ url: REDIS_URL, name: 'bench-bare' });
  const queue = new Queue('tasks', { connection: redis, prefix: `${prefix}:bull` });
  const app = Fastify({ logger: false });
  app.post('/v1/tasks', async (request, reply) => {
    const id = randomUUID();
    await redis.hset(`${prefix}:task:${id}`, 'data', JSON.stringify(request.body));
    await queue.add('task', { taskId: id }, { jobId: id });
    return reply.code(202).send({ id, status: 'queued' });
  });
  app.get<{ Params: { id: string } }>('/v1/tasks/:id', async (request, reply) => {
    const task = await redis.hgetall(`${prefix}:task:${request.params.id}`);
    if (task.data === undefined) return reply.code(404).send({ error: 'not found' });
    return JSON.parse(task.data) as unknown;
  });
  const port = await freePort();
  await app.listen({ host: '127.0.0.1', port });
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      await app.close();
      await queue.close();
      redis.disconnect();
    },
  };
}

const row = (name: string, r: Run): string =>
  `| ${name} | ${r.rps.toFixed(0)} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p97_5)} | ${fmt(r.p99)} | ${r.non2xx + r.errors} | ${r.load} |`;

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = load();
  const barePrefix = `bench-bare-${randomBytes(4).toString('hex')}`;
  const stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# Bench\n' })) },
    worker: false,
    env: {
      PATCHBAY_RATE_LIMIT_PER_MINUTE: '100000000',
      PATCHBAY_MAX_ACTIVE_TASKS: '100000000',
    },
  });
  const bare = await startBare(barePrefix);
  try {
    const body = JSON.stringify({
      repo: { url: stack.git.url('app.git'), ref: 'main' },
      prompt: 'Make parseDate accept ISO week dates and add tests.',
    });
    const created = await call(stack, 'POST', '/v1/tasks', JSON.parse(body));
    if (created.status !== 202) throw new Error(`submit failed: ${JSON.stringify(created.body)}`);
    const bareCreated = await fetch(`${bare.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const bareId = ((await bareCreated.json()) as { id: string }).id;

    // A short warm-up of each server (JIT, connection pools), then the measured runs,
    // alternating so that a change in the machine's load hits both sides alike.
    log('warming up');
    await autocannon(`${bare.url}/v1/tasks/${bareId}`, undefined, 2);
    await autocannon(`${stack.url}/v1/tasks/${created.body.id}`, undefined, 2);
    log(`POST /v1/tasks, ${SECONDS} s each`);
    const barePost = await autocannon(`${bare.url}/v1/tasks`, body);
    const pbPost = await autocannon(`${stack.url}/v1/tasks`, body);
    log(`GET /v1/tasks/:id, ${SECONDS} s each`);
    const bareGet = await autocannon(`${bare.url}/v1/tasks/${bareId}`);
    const pbGet = await autocannon(`${stack.url}/v1/tasks/${created.body.id}`);

    const judge = (pb: Run, b: Run): string => {
      const ratio = pb.rps / b.rps;
      const ok = ratio >= 0.5 && pb.p99 < 20;
      return (
        `${(ratio * 100).toFixed(0)}% of the bare server's req/s, p99 ${fmt(pb.p99)} — ${verdict(ok)}` +
        (ok
          ? ''
          : ` (needs ≥ 50% and p99 < 20 ms: ${ratio < 0.5 ? `${((0.5 - ratio) * 100).toFixed(0)} points short on req/s` : 'req/s fine'}, ${pb.p99 >= 20 ? `p99 ${fmt(pb.p99 - 20)} over` : 'p99 fine'})`)
      );
    };
    await writeSection('api', [
      ...header(
        'API (`apps/api`) against bare fastify + BullMQ',
        `${process.env.BENCH_API_SECONDS ? `BENCH_API_SECONDS=${SECONDS} ` : ''}node --import tsx bench/api.bench.ts`,
        started,
        loadStart,
      ),
      `- Load: autocannon ${CONNECTIONS} connections, ${SECONDS} s per run, in its own process; server and Redis (shared, 127.0.0.1) on the same 2 cores. No worker: tasks stay queued. Rate limit and active-task cap raised via \`PATCHBAY_RATE_LIMIT_PER_MINUTE\` / \`PATCHBAY_MAX_ACTIVE_TASKS\`; both servers' Redis keys are deleted afterwards.`,
      '- Bare server: fastify without schemas, `HSET` + `queue.add` for POST, `HGETALL` for GET, on the same Redis and BullMQ.',
      "- Patchbay's POST also does the per-tenant rate limit (before anything is stored; concurrent requests of one tenant share one Redis call, see `apps/api/src/rate-limit-store.ts`), one create script (record, tenant indexes, active-task cap and the `queued` event, which starts the task's event stream) where the bare server has its `HSET`, zod validation of the body and of the stored record, and the repo URL check. Its GET also does the rate limit, sent alongside the read, and parses the record with zod; a task view is not checked again on its way out (it was parsed on the way in and out of the store).",
      '- Redis runs with `stream-node-max-bytes 1024` (as provisioned; the default 4096 made every new task stream cost 4.3 KB and 7–17 µs of Redis time for its `XADD`, against 0.7 KB and 2 µs at 512: 20,000 new streams each, measured with `INFO commandstats`/`used_memory` on 2026-11-29).',
      '- Before the coalescing rate-limit store, the trusted task view and the stream node size (same bench on 2026-11-29 02:21 UTC, load 2.0): POST 39% (3,250 vs 8,394 req/s), GET 41% (6,914 vs 16,993).',
      '- autocannon reports p50/p90/p97.5/p99 (no p95); p97.5 is the column nearest p95.',
      '',
      '| route, server | req/s | p50 | p90 | p97.5 | p99 | non-2xx + errors | load (1 min) after |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      row('`POST /v1/tasks`, bare', barePost),
      row('`POST /v1/tasks`, Patchbay', pbPost),
      row('`GET /v1/tasks/:id`, bare', bareGet),
      row('`GET /v1/tasks/:id`, Patchbay', pbGet),
      '',
      `Targets: issue 12, ≥ half the bare req/s: POST ${((pbPost.rps / barePost.rps) * 100).toFixed(0)}% — ${verdict(pbPost.rps / barePost.rps >= 0.5)}, GET ${((pbGet.rps / bareGet.rps) * 100).toFixed(0)}% — ${verdict(pbGet.rps / bareGet.rps >= 0.5)}.`,
      `Issue 7, the same with p99 < 20 ms as well: POST: ${judge(pbPost, barePost)}. GET: ${judge(pbGet, bareGet)}.`,
    ]);
  } finally {
    await bare.close();
    await stack.close();
    await deleteKeys(REDIS_URL, barePrefix);
  }
}

await main();
