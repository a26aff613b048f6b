/**
 * Shared by the benchmarks in this folder: percentiles, the machine line, writing one
 * benchmark's section of RESULTS.md between its own markers (so benchmarks never clobber each
 * other's figures), and a sandbox provider of a benchmark's own.
 */
import type { DockerSandboxProvider } from '@patchbay/sandbox';
import { removeNamespace, testProvider } from '@patchbay/sandbox/testing';
import { randomUUID } from 'node:crypto';
import { type Stack, call } from '../test/support/stack.js';
import { readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  mean: number;
}

export function stats(samples: readonly number[]): Stats {
  const s = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)] ?? NaN;
  return {
    n: s.length,
    p50: at(0.5),
    p95: at(0.95),
    p99: at(0.99),
    mean: s.length === 0 ? NaN : s.reduce((a, b) => a + b, 0) / s.length,
  };
}

export const fmt = (ms: number): string => `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
export const verdict = (ok: boolean): string => (ok ? 'met' : '**missed**');
export const load = (): string => loadavg()[0]!.toFixed(1);

export function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

function machine(): string {
  const cpu = cpus();
  return (
    `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores (nproc), ` +
    `${(totalmem() / 2 ** 30).toFixed(1)} GiB RAM, Linux ${release()}; Node ${process.version}`
  );
}

/** The header lines every section starts with. */
export function header(
  title: string,
  command: string,
  started: Date,
  loadAtStart: string,
  options: { loadAtEnd?: string; inNpmRunBench?: boolean } = {},
): string[] {
  const { loadAtEnd = load(), inNpmRunBench = true } = options;
  return [
    `## ${title}`,
    '',
    `- Machine: ${machine()}`,
    `- Date: ${started.toISOString()}; load average (1 min) ${loadAtStart} at the start, ${loadAtEnd} at the end (the machine is shared: other test suites ran beside the benchmark)`,
    `- Command: \`${command}\`${inNpmRunBench ? ' (also `npm run bench`)' : ''}`,
  ];
}

/** Replaces the section between `<!-- bench:<name>:start/end -->`, leaving the others as they are. */
export async function writeSection(name: string, lines: readonly string[]): Promise<void> {
  const start = `<!-- bench:${name}:start -->`;
  const end = `<!-- bench:${name}:end -->`;
  const section = [start, ...lines, end].join('\n');
  process.stdout.write(`${section}\n`);
  let text = '';
  try {
    text = await readFile(RESULTS, 'utf8');
  } catch {
    text = '# Benchmark results\n\nEach section is written by the benchmark named in it.\n';
  }
  const from = text.indexOf(start);
  const to = text.indexOf(end);
  text =
    from >= 0 && to > from
      ? text.slice(0, from) + section + text.slice(to + end.length)
      : `${text.trimEnd()}\n\n${section}\n`;
  await writeFile(RESULTS, text);
  log(`wrote the ${name} section of ${RESULTS}`);
}

/** A task event as the benchmarks read it from `GET /v1/tasks/:id/events`. */
export interface BenchEvent {
  seq: number;
  type: string;
  time: string;
  phase?: string;
  status?: string;
  turn?: number;
}

/** A task's whole event log (up to 1,000 events), through the API. */
export async function eventsOf(stack: Stack, id: string): Promise<BenchEvent[]> {
  const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?after=0&limit=1000`);
  return body.events as BenchEvent[];
}

/** The time of the first event that matches (epoch ms); throws, naming the types seen, if none. */
export function eventTime<E extends { type: string; time: string }>(
  events: readonly E[],
  matches: (event: E) => boolean,
): number {
  const event = events.find(matches);
  if (!event) throw new Error(`missing event in ${events.map((e) => e.type).join(',')}`);
  return Date.parse(event.time);
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * A sandbox provider for one benchmark: its own namespace, no reaper, and no warm pool unless
 * `warmPoolImage` names one (then one container of it kept ready). `close` closes it and
 * removes any container of that namespace still there (a run that failed midway).
 */
export function benchSandboxes(warmPoolImage?: string): {
  provider: DockerSandboxProvider;
  close(): Promise<void>;
} {
  const provider = testProvider({
    namespace: `bench-${randomUUID().slice(0, 8)}`,
    ...(warmPoolImage === undefined ? {} : { warmPoolSize: 1, warmPoolImages: [warmPoolImage] }),
  });
  return {
    provider,
    close: async () => {
      await provider.close();
      await removeNamespace(provider.options.namespace);
    },
  };
}
