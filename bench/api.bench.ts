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
import { createRequire } from 'node:module';
import { randomBytes, randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import { createRedis } from '@patchbay/queue';
import { Queue } from 'bullmq';
import Fastify from 'fastify';
import { call, deleteKeys, freePort, startStack } from '../test/support/stack.js';
import { fmt, header, load, log, verdict, writeSection } from './support.js';

const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 10);
const CONNECTIONS = 50;
const AUTOCANNON = createRequire(import.meta.url).resolve('autocannon');
/** Tenants of the many-tenant runs, each with a key of its own. */
const TENANTS = 50;
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

/**
 * One autocannon run in a process of its own, through its API so that each request can carry the
 * key of the next tenant in turn (`keys`: one per tenant; none for the bare server).
 */
const RUNNER = `
const o = JSON.parse(process.argv[1]);
const autocannon = (await import(o.autocannon)).default;
let next = 0;
const setupRequest = (req) => {
  if (o.keys.length === 0) return req;
  const i = next++ % o.keys.length;
  return {
    ...req,
    ...(o.paths ? { path: o.paths[i] } : {}),
    headers: { ...req.headers, authorization: 'Bearer ' + o.keys[i] },
  };
};
autocannon({
  url: o.url, connections: o.connections, duration: o.seconds,
  requests: [{ method: o.body === undefined ? 'GET' : 'POST', headers: { 'content-type': 'application/json' }, ...(o.body === undefined ? {} : { body: o.body }), setupRequest }],
}, (err, r) => { if (err) throw err; process.stdout.write(JSON.stringify(r)); });
`;

async function autocannon(
  url: string,
  options: { post?: string; keys?: readonly string[]; paths?: string[]; seconds?: number } = {},
): Promise<Run> {
  const input = {
    autocannon: AUTOCANNON,
    url,
    connections: CONNECTIONS,
    seconds: options.seconds ?? SECONDS,
    keys: options.keys ?? [],
    ...(options.paths === undefined ? {} : { paths: options.paths }),
    ...(options.post === undefined ? {} : { body: options.post }),
  };
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '--eval', RUNNER, JSON.stringify(input)],
    { maxBuffer: 16 * 1024 * 1024 },
  );
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
  const keys = Array.from(
    { length: TENANTS },
    (_, i) => `bench-key-${i}-${randomBytes(8).toString('hex')}`,
  );
  const stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# Bench\n' })) },
    worker: false,
    env: {
      PATCHBAY_API_KEYS: keys.map((key, i) => `tenant-${i}:${key}`).join(','),
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
    // A task of each tenant, for the reads.
    const own: string[] = [];
    for (const key of keys) {
      const created = await call(stack, 'POST', '/v1/tasks', JSON.parse(body), {
        authorization: `Bearer ${key}`,
      });
      if (created.status !== 202) throw new Error(`submit failed: ${JSON.stringify(created.body)}`);
      own.push(`/v1/tasks/${created.body.id}`);
    }
    const bareCreated = await fetch(`${bare.url}/v1/tasks`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    const bareId = ((await bareCreated.json()) as { id: string }).id;
    const one = { keys: keys.slice(0, 1) };
    const many = { keys };

    // A short warm-up of each server (JIT, connection pools), then the measured runs,
    // alternating so that a change in the machine's load hits both sides alike.
    log('warming up');
    await autocannon(`${bare.url}/v1/tasks/${bareId}`, { seconds: 2 });
    await autocannon(`${stack.url}${own[0]}`, { ...one, seconds: 2 });
    await autocannon(`${stack.url}/v1/tasks`, { ...one, post: body, seconds: 2 });
    log(`POST /v1/tasks, ${SECONDS} s each`);
    const barePost = await autocannon(`${bare.url}/v1/tasks`, { post: body });
    const pbPost = await autocannon(`${stack.url}/v1/tasks`, { ...one, post: body });
    const pbPostMany = await autocannon(`${stack.url}/v1/tasks`, { ...many, post: body });
    log(`GET /v1/tasks/:id, ${SECONDS} s each`);
    const bareGet = await autocannon(`${bare.url}/v1/tasks/${bareId}`);
    const pbGet = await autocannon(`${stack.url}${own[0]}`, one);
    const pbGetMany = await autocannon(`${stack.url}${own[0]}`, { ...many, paths: own });

    const pct = (pb: Run, b: Run): string => `${((pb.rps / b.rps) * 100).toFixed(0)}%`;
    const judge = (pb: Run, b: Run, target: number): string =>
      `${pct(pb, b)} — ${verdict(pb.rps / b.rps >= target)}`;
    await writeSection('api', [
      ...header(
        'API (`apps/api`) against bare fastify + BullMQ',
        `${process.env.BENCH_API_SECONDS ? `BENCH_API_SECONDS=${SECONDS} ` : ''}node --import tsx bench/api.bench.ts`,
        started,
        loadStart,
      ),
      `- Load: autocannon ${CONNECTIONS} connections, ${SECONDS} s per run, in its own process; server and Redis (shared, 127.0.0.1) on the same 2 cores. No worker: tasks stay queued. Rate limit and active-task cap raised via \`PATCHBAY_RATE_LIMIT_PER_MINUTE\` / \`PATCHBAY_MAX_ACTIVE_TASKS\`; both servers' Redis keys are deleted afterwards.`,
      `- Tenants: ${TENANTS} API keys. "One tenant": every request carries the same key. "Many tenants": each request the next key in turn (and, for GET, that tenant's own task), so each tenant has its own rate-limit counter and active-task counter.`,
      '- Bare server: fastify without schemas, `HSET` + `queue.add` for POST, `HGETALL` for GET, on the same Redis and BullMQ.',
      "- Patchbay's POST also does the key check, the per-tenant rate limit (the counts of all tenants' requests of one event-loop turn go in one Redis call, `apps/api/src/rate-limit-store.ts`), zod validation of the body, the repo URL check (a URL accepted before is not parsed again) and one create script for the creates of one event-loop turn (per task: the record in its stored form without empty fields, tenant indexes, active-task cap, status counts, the lifecycle outbox entry and the `queued` event) where the bare server has its `HSET`; then the BullMQ add. The API's Redis clients send each turn's commands in one socket write (`packages/queue/src/redis.ts`). Its GET does the key check, the rate limit (sent alongside the read) and the read; a record read unchanged is parsed once and its view serialized once (`packages/store/src/parsed-records.ts`).",
      '- autocannon reports p50/p90/p97.5/p99 (no p95); p97.5 is the column nearest p95.',
      '',
      '| route, server | req/s | p50 | p90 | p97.5 | p99 | non-2xx + errors | load (1 min) after |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      row('`POST /v1/tasks`, bare', barePost),
      row('`POST /v1/tasks`, Patchbay, one tenant', pbPost),
      row(`\`POST /v1/tasks\`, Patchbay, ${TENANTS} tenants`, pbPostMany),
      row('`GET /v1/tasks/:id`, bare', bareGet),
      row('`GET /v1/tasks/:id`, Patchbay, one tenant', pbGet),
      row(`\`GET /v1/tasks/:id\`, Patchbay, ${TENANTS} tenants`, pbGetMany),
      '',
      `Targets (issue 26): POST ≥ 50% of the bare req/s: one tenant ${judge(pbPost, barePost, 0.5)}, ${TENANTS} tenants ${judge(pbPostMany, barePost, 0.5)}. GET ≥ 60%: one tenant ${judge(pbGet, bareGet, 0.6)}, ${TENANTS} tenants ${judge(pbGetMany, bareGet, 0.6)}.`,
    ]);
  } finally {
    await bare.close();
    await stack.close();
    await deleteKeys(REDIS_URL, barePrefix);
  }
}

await main();
