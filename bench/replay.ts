/**
 * Replays real repositories' upstream fixes through the whole service (see bench/replay/run.ts)
 * and reports: per instance whether the fix succeeded with verify passing and the tests alone
 * ended `verify_failed`, setup cold and from the cache, submit → verdict. Writes the results as
 * JSON and, for a run of every instance, its section of bench/RESULTS.md.
 *
 *   node --import tsx bench/replay.ts                      # every instance
 *   node --import tsx bench/replay.ts --only dayjs-2377    # some (printed and JSON only)
 *   node --import tsx bench/replay.ts --mirrors DIR        # clones elsewhere (default ../.mirror)
 *   node --import tsx bench/replay.ts --outputs DIR        # also keep each verify's output there
 *   node --import tsx bench/replay.ts --report bench/replay/results.json   # report a run again
 *
 * The repositories are not in this project: each instance's `owner/name` must have a full clone
 * under the mirrors directory, as `<owner>+<name>/repo` or `<owner>/<name>.git` (e.g.
 * `git clone --mirror https://github.com/iamkun/dayjs ../.mirror/iamkun/dayjs.git`). Setup runs
 * with the network on (it installs the dependencies from the package registry).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadInstances } from './replay/instances.js';
import { type InstanceResult, replay } from './replay/run.js';
import { header, load, log, stats, writeSection } from './support.js';

const here = (path: string): string => fileURLToPath(new URL(path, import.meta.url));

const { values } = parseArgs({
  options: {
    instances: { type: 'string', default: here('./replay/instances.json') },
    mirrors: { type: 'string', default: here('../../.mirror') },
    only: { type: 'string' },
    out: { type: 'string', default: here('./replay/results.json') },
    outputs: { type: 'string' },
    report: { type: 'string' },
  },
});

const seconds = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`;

/** The results table, one row per instance. */
function table(results: readonly InstanceResult[]): string[] {
  return [
    '| instance | runner | package manager | with the fix | tests only | setup, first run | setup, second run | submit → verdict (fix / tests only) | ok |',
    '| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- |',
    ...results.map((r) => {
      const run = (x: InstanceResult['withFix']): string =>
        x === null ? '—' : `${x.status}${x.errorCode ? ` (${x.errorCode})` : ''}`;
      return `| ${r.id} | ${r.runner} | ${r.packageManager} | ${run(r.withFix)} | ${run(r.withoutFix)} | ${seconds(r.withFix?.setupMs)}${r.withFix?.setupCached ? ' (cached)' : ''} | ${seconds(r.withoutFix?.setupMs)} | ${seconds(r.withFix?.submitToVerdictMs)} / ${seconds(r.withoutFix?.submitToVerdictMs)} | ${r.ok ? 'yes' : `**no**: ${r.problems.join('; ')}`} |`;
    }),
  ];
}

/** What a run leaves in its JSON file, enough to report it again. */
interface Run {
  started: string;
  loadStart: string;
  loadEnd: string;
  results: InstanceResult[];
}

async function main(): Promise<void> {
  if (values.report !== undefined) {
    const run = JSON.parse(await readFile(values.report, 'utf8')) as Run;
    await report(run, true);
    return;
  }
  const started = new Date();
  const loadStart = load();
  let instances = await loadInstances(values.instances);
  if (values.only !== undefined) {
    const wanted = new Set(values.only.split(','));
    instances = instances.filter((i) => wanted.has(i.id));
    if (instances.length !== wanted.size) throw new Error(`--only names unknown instances`);
  }
  log(`replaying ${instances.length} instances (clones under ${values.mirrors})`);
  const results = await replay({
    instances,
    mirrors: values.mirrors,
    progress: log,
    ...(values.outputs === undefined ? {} : { outputs: values.outputs }),
  });
  const run: Run = { started: started.toISOString(), loadStart, loadEnd: load(), results };
  await writeFile(values.out, `${JSON.stringify(run, null, 2)}\n`);
  log(`wrote ${values.out}`);
  await report(run, values.only === undefined);
  if (results.some((r) => !r.ok)) process.exitCode = 1;
}

/** Prints the table and figures; for a run of every instance, writes its RESULTS.md section. */
async function report(run: Run, writeResults: boolean): Promise<void> {
  const { results } = run;
  const passed = results.filter((r) => r.ok).length;
  const tasks = results.flatMap((r) => [r.withFix, r.withoutFix].flatMap((x) => (x ? [x] : [])));
  const verdicts = stats(tasks.map((x) => x.submitToVerdictMs));
  const setups = (cached: boolean): number[] =>
    tasks.flatMap((x) => (x.setupMs !== null && x.setupCached === cached ? [x.setupMs] : []));
  const cold = setups(false);
  const cached = setups(true);
  const lines = [
    `Pass rate: ${passed}/${results.length} (${((100 * passed) / results.length).toFixed(0)} %).`,
    `Setup p50: run (cold) ${seconds(stats(cold).p50)} over ${cold.length} tasks, from the cache ${seconds(stats(cached).p50)} over ${cached.length} tasks (a first run is cached too when an earlier instance left the same environment: same lockfile and setup).`,
    `Submit → verdict: p50 ${seconds(verdicts.p50)}, p95 ${seconds(verdicts.p95)} (${tasks.length} tasks).`,
  ];
  const rows = table(results);
  process.stdout.write(`${[...rows, '', ...lines].join('\n')}\n`);
  if (!writeResults) return;
  await writeSection('replay', [
    ...header(
      'Replay: real repositories through the whole service (issue 27)',
      'node --import tsx bench/replay.ts',
      new Date(run.started),
      run.loadStart,
      { loadAtEnd: run.loadEnd, inNpmRunBench: false },
    ),
    `- Instances: \`bench/replay/instances.json\` (how each was made is in its \`made\`); results: \`bench/replay/results.json\` (\`--report\` prints them again).`,
    "- Each instance runs twice through the public API: with the upstream fix (the oracle model applies the test files and the fix with `apply_patch`; must succeed with verify passing) and with the test files only (must end `verify_failed`, its setup from the cache the first run left). The tests the change adds must show failing in the second run's verify output and passing in the first's.",
    '',
    ...rows,
    '',
    ...lines,
  ]);
}

await main();
