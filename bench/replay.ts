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
 *
 * The repositories are not in this project: each instance's `owner/name` must have a full clone
 * under the mirrors directory, as `<owner>+<name>/repo` or `<owner>/<name>.git` (e.g.
 * `git clone --mirror https://github.com/iamkun/dayjs ../.mirror/iamkun/dayjs.git`). Setup runs
 * with the network on (it installs the dependencies from the package registry).
 */
import { writeFile } from 'node:fs/promises';
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
  },
});

const seconds = (ms: number | null | undefined): string =>
  ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`;

/** The results table, one row per instance. */
function table(results: readonly InstanceResult[]): string[] {
  return [
    '| instance | runner | package manager | with the fix | tests only | setup cold | setup cached | submit → verdict (fix / tests only) | ok |',
    '| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- |',
    ...results.map((r) => {
      const run = (x: InstanceResult['withFix']): string =>
        x === null ? '—' : `${x.status}${x.errorCode ? ` (${x.errorCode})` : ''}`;
      return `| ${r.id} | ${r.runner} | ${r.packageManager} | ${run(r.withFix)} | ${run(r.withoutFix)} | ${seconds(r.withFix?.setupMs)} | ${seconds(r.withoutFix?.setupMs)} | ${seconds(r.withFix?.submitToVerdictMs)} / ${seconds(r.withoutFix?.submitToVerdictMs)} | ${r.ok ? 'yes' : `**no**: ${r.problems.join('; ')}`} |`;
    }),
  ];
}

async function main(): Promise<void> {
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
  await writeFile(values.out, `${JSON.stringify({ started, results }, null, 2)}\n`);
  log(`wrote ${values.out}`);

  const passed = results.filter((r) => r.ok).length;
  const verdicts = results.flatMap((r) =>
    [r.withFix, r.withoutFix].flatMap((x) => (x === null ? [] : [x.submitToVerdictMs])),
  );
  const cold = results.flatMap((r) => (r.withFix?.setupMs == null ? [] : [r.withFix.setupMs]));
  const cached = results.flatMap((r) =>
    r.withoutFix?.setupMs == null ? [] : [r.withoutFix.setupMs],
  );
  const v = stats(verdicts);
  const lines = [
    `Pass rate: ${passed}/${results.length} (${((100 * passed) / results.length).toFixed(0)} %).`,
    `Setup p50: cold ${seconds(stats(cold).p50)}, from the cache ${seconds(stats(cached).p50)}.`,
    `Submit → verdict: p50 ${seconds(v.p50)}, p95 ${seconds(v.p95)} (${verdicts.length} tasks).`,
  ];
  const rows = table(results);
  process.stdout.write(`${[...rows, '', ...lines].join('\n')}\n`);
  if (values.only === undefined) {
    await writeSection('replay', [
      ...header(
        'Replay: real repositories through the whole service (issue 27)',
        'node --import tsx bench/replay.ts',
        started,
        loadStart,
      ),
      `- Instances: \`bench/replay/instances.json\` (how each was made is in its \`made\`); results: \`bench/replay/results.json\`.`,
      '- Each instance runs twice through the public API: with the upstream fix (the oracle model applies the test files and the fix with `apply_patch`; must succeed with verify passing) and with the test files only (must end `verify_failed`, its setup from the cache the first run left).',
      '',
      ...rows,
      '',
      ...lines,
    ]);
  }
  if (passed < results.length) process.exitCode = 1;
}

await main();
