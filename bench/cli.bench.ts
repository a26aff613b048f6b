/**
 * CLI start time (issue 12): `patchbay --help` and `patchbay status <id>` as a user runs them,
 * from the bundle bin/patchbay.js keeps (the fast path) against the same sources run through tsx's
 * loader (how every start ran before), measured in the same run. `status` asks a stub API on
 * 127.0.0.1 that answers at once, so the figure is the command's own start and exit.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { fmt, header, load, log, stats, verdict, writeSection } from './support.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BIN = `${ROOT}apps/cli/bin/patchbay.js`;
const RUNS = Number(process.env.PATCHBAY_BENCH_CLI_RUNS ?? 30);
const TARGET_MS = 300;

const started = new Date();
const loadAtStart = load();

const task = {
  id: 'task-0123456789abcdef',
  status: 'succeeded',
  phase: null,
  repo: { url: 'https://example.com/r.git', ref: 'main' },
  baseCommit: 'a'.repeat(40),
  createdAt: started.toISOString(),
  startedAt: started.toISOString(),
  finishedAt: started.toISOString(),
  result: null,
  error: null,
  usage: { inputTokens: 1, cachedInputTokens: 0, outputTokens: 1, reasoningTokens: 0 },
};
const api = createServer((_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(task));
});
api.listen(0, '127.0.0.1');
await once(api, 'listening');
const server = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;

/** Wall time of one start, in ms. */
async function time(args: string[], viaTsx: boolean): Promise<number> {
  const argv = viaTsx
    ? ['--import', 'tsx', `${ROOT}apps/cli/src/main.ts`, ...args]
    : [BIN, ...args];
  const t0 = performance.now();
  await run(process.execPath, argv, { cwd: ROOT, env: { ...process.env, PATCHBAY_URL: server } });
  return performance.now() - t0;
}

const rows: string[] = [];
const figures: Record<string, number> = {};
await time(['--help'], false); // makes the bundle if it is stale
for (const [name, args] of [
  ['--help', ['--help']],
  ['status <id>', ['status', task.id]],
] as const) {
  const fast: number[] = [];
  const slow: number[] = [];
  // Interleaved, so both see the same machine load.
  for (let i = 0; i < RUNS; i++) {
    fast.push(await time([...args], false));
    slow.push(await time([...args], true));
  }
  const f = stats(fast);
  const s = stats(slow);
  figures[name] = f.p50;
  log(`${name}: bundle p50 ${fmt(f.p50)}, tsx p50 ${fmt(s.p50)}`);
  rows.push(
    `| \`patchbay ${name}\` | ${fmt(f.p50)} | ${fmt(f.p95)} | ${fmt(s.p50)} | ${fmt(s.p95)} | ≤ ${TARGET_MS} ms: ${verdict(f.p50 <= TARGET_MS)} |`,
  );
}
api.close();

await writeSection('cli', [
  ...header('CLI start (`apps/cli`)', 'node --import tsx bench/cli.bench.ts', started, loadAtStart),
  `- ${RUNS} starts of each, interleaved; wall time from spawn to exit.`,
  '',
  '| command | bundle p50 | bundle p95 | tsx loader p50 | tsx loader p95 | target (p50) |',
  '| --- | --- | --- | --- | --- | --- |',
  ...rows,
  '',
  'Before (a63d89f: every start went through tsx, loaded the agent package and made its request with `fetch`), `patchbay --help` took 0.87–0.97 s (`/usr/bin/time node apps/cli/bin/patchbay.js --help`, 3 runs on 2026-11-29).',
  '',
  "The bundle is the CLI's own code, made by esbuild on first use and remade when a source is newer (`apps/cli/bin/patchbay.js`); its packages stay external, and `@patchbay/agent` (with the openai SDK) loads only for `apply-patch`, which then also needs tsx's loader. The tsx column runs the same sources through the loader, as every start did before.",
]);
