/**
 * Where a submit's CPU goes (issue 26): the API as `node ../shared/bench/api-vs-bare.mjs` runs it
 * (from source, no worker, a private Redis) and that script's bare fastify + BullMQ server, each
 * loaded by autocannon (50 connections) in this process, in alternating rounds. For each round:
 * CPU per request of the server process and of Redis (from `/proc/<pid>/stat`) and of the load
 * generator. On this shared 2-core machine req/s moves by 10-20 % between runs; CPU per request
 * moves less, and says which process a change saves in.
 *
 *   node --import tsx bench/api-cpu.bench.ts
 *   BENCH_ROUNDS=5 BENCH_API_SECONDS=8 node --import tsx bench/api-cpu.bench.ts
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../test/support/stack.js';
import { header, load, log, sleep, writeSection } from './support.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_API_SECONDS ?? 6);
const KEY = 'pbk-bench-0123456789abcdef';
const BARE = new URL('../../shared/bench/bare-server.mjs', import.meta.url);
const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: Record<string, unknown>,
  done: (err: Error | null, result: { requests: { average: number; total: number } }) => void,
) => void;

/** CPU time of a process so far, in µs (user + system, from its stat line). */
function cpuOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10_000;
}

async function answers(url: string): Promise<void> {
  for (let i = 0; i < 240; i++) {
    try {
      if ((await fetch(url)).status < 500) return;
    } catch {
      // not listening yet
    }
    await sleep(250);
  }
  throw new Error(`no answer from ${url}`);
}

interface Round {
  rps: number;
  server: number;
  redis: number;
  client: number;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  // The bare server is the judge's own, beside the project; a clone alone has no figure to give.
  if (!existsSync(BARE)) {
    log(`no figure: this benchmark runs the bare server of ${BARE.pathname}, which is not there`);
    return;
  }
  const started = new Date();
  const loadStart = load();
  const work = mkdtempSync(join(tmpdir(), 'pb-api-cpu-'));
  const procs: ChildProcess[] = [];
  const start = (cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: 'ignore' });
    procs.push(child);
    return child;
  };
  try {
    const [redisPort, apiPort, barePort] = [await freePort(), await freePort(), await freePort()];
    mkdirSync(join(work, 'redis'));
    const redisServer = start('redis-server', [
      ...['--bind', '127.0.0.1', '--port', String(redisPort), '--dir', join(work, 'redis')],
      ...['--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', ''],
    ]);
    const redisUrl = `redis://127.0.0.1:${redisPort}`;
    await sleep(800);
    const api = start(process.execPath, ['--import', 'tsx', 'apps/api/src/main.ts'], {
      PORT: String(apiPort),
      HOST: '127.0.0.1',
      REDIS_URL: redisUrl,
      PATCHBAY_API_KEYS: `bench:${KEY}`,
      PATCHBAY_RATE_LIMIT_PER_MINUTE: '100000000',
      PATCHBAY_MAX_ACTIVE_TASKS: '100000000',
      LOG_LEVEL: 'warn',
      PATCHBAY_REPO_HOSTS: 'http://127.0.0.1:9',
      OPENAI_API_KEY: 'sk-bench',
      PATCHBAY_DATA_DIR: join(work, 'data'),
    });
    const bare = start(process.execPath, [
      '--input-type=module',
      '--eval',
      readFileSync(BARE, 'utf8'),
      String(barePort),
      redisUrl,
    ]);
    await answers(`http://127.0.0.1:${apiPort}/healthz`);
    await answers(`http://127.0.0.1:${barePort}/v1/tasks/x`);

    const body = JSON.stringify({
      repo: { url: 'http://127.0.0.1:9/none.git', ref: 'main' },
      prompt: 'Fix the bug in parse() and add a test.',
    });
    const json = { 'content-type': 'application/json' };
    const auth = { authorization: `Bearer ${KEY}` };
    const round = async (pid: number, options: Record<string, unknown>): Promise<Round> => {
      const before = [cpuOf(pid), cpuOf(redisServer.pid!), process.cpuUsage()] as const;
      const result = await new Promise<{ requests: { average: number; total: number } }>(
        (resolve, reject) =>
          autocannon({ connections: 50, duration: SECONDS, ...options }, (err, r) =>
            err ? reject(err) : resolve(r),
          ),
      );
      const n = result.requests.total;
      const client = process.cpuUsage(before[2]);
      return {
        rps: result.requests.average,
        server: (cpuOf(pid) - before[0]) / n,
        redis: (cpuOf(redisServer.pid!) - before[1]) / n,
        client: (client.user + client.system) / n,
      };
    };
    const runs = new Map<string, Round[]>();
    const add = (name: string, r: Round): void =>
      void runs.set(name, [...(runs.get(name) ?? []), r]);
    for (let i = 0; i < ROUNDS; i++) {
      log(`POST round ${i + 1} of ${ROUNDS}, ${SECONDS} s each`);
      const post = { method: 'POST', body };
      add(
        'POST, bare',
        await round(bare.pid!, {
          url: `http://127.0.0.1:${barePort}/v1/tasks`,
          ...post,
          headers: json,
        }),
      );
      add(
        'POST, Patchbay',
        await round(api.pid!, {
          url: `http://127.0.0.1:${apiPort}/v1/tasks`,
          ...post,
          headers: { ...json, ...auth },
        }),
      );
    }
    const mine = (await (
      await fetch(`http://127.0.0.1:${apiPort}/v1/tasks`, {
        method: 'POST',
        body,
        headers: { ...json, ...auth },
      })
    ).json()) as { id: string };
    const theirs = (await (
      await fetch(`http://127.0.0.1:${barePort}/v1/tasks`, { method: 'POST', body, headers: json })
    ).json()) as { id: string };
    for (let i = 0; i < ROUNDS; i++) {
      log(`GET round ${i + 1} of ${ROUNDS}`);
      add(
        'GET, bare',
        await round(bare.pid!, { url: `http://127.0.0.1:${barePort}/v1/tasks/${theirs.id}` }),
      );
      add(
        'GET, Patchbay',
        await round(api.pid!, {
          url: `http://127.0.0.1:${apiPort}/v1/tasks/${mine.id}`,
          headers: auth,
        }),
      );
    }

    const row = (name: string): string => {
      const rs = runs.get(name)!;
      const m = (f: (r: Round) => number): string => median(rs.map(f)).toFixed(0);
      return `| ${name} | ${m((r) => r.rps)} | ${m((r) => r.server)} | ${m((r) => r.redis)} | ${m((r) => r.client)} | ${m((r) => r.server + r.redis + r.client)} |`;
    };
    await writeSection('api-cpu', [
      ...header(
        'API: CPU per request, server and Redis (issue 26)',
        `${process.env.BENCH_ROUNDS ? `BENCH_ROUNDS=${ROUNDS} ` : ''}${process.env.BENCH_API_SECONDS ? `BENCH_API_SECONDS=${SECONDS} ` : ''}node --import tsx bench/api-cpu.bench.ts`,
        started,
        loadStart,
      ),
      `- As \`node ../shared/bench/api-vs-bare.mjs\` runs them: the API from source without a worker, the bare fastify + BullMQ server, one private Redis with AOF; autocannon (50 connections, ${SECONDS} s) in the benchmark's own process; ${ROUNDS} alternating rounds, medians. CPU from \`/proc/<pid>/stat\` (10 ms ticks) over the requests of the round.`,
      '',
      '| route, server | req/s | server µs/request | Redis µs/request | load generator µs/request | sum |',
      '| --- | ---: | ---: | ---: | ---: | ---: |',
      ...['POST, bare', 'POST, Patchbay', 'GET, bare', 'GET, Patchbay'].map(row),
    ]);
  } finally {
    for (const child of procs) child.kill('SIGTERM');
    await sleep(500);
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
