/**
 * Patch collection benchmark (issue 7, figure 6): `collectPatch` (packages/pipeline) against a
 * real sandbox holding a 2,000-file repository, for 1, 100 and 1,000 changed files. The
 * comparison, measured in the same run: the bare minimum, one exec of
 * `git add -A && git diff --cached --binary` writing the diff to stdout.
 *
 *   node --import tsx bench/patch.bench.ts
 *   BENCH_SAMPLES=5 node --import tsx bench/patch.bench.ts
 */
import { collectPatch } from '@patchbay/pipeline';
import { type Sandbox } from '@patchbay/sandbox';
import { benchSandboxes, fmt, header, load, log, stats, writeSection } from './support.js';

const IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 15);
const FILES = 2000;
const CHANGED = [1, 100, 1000] as const;
const GIT = 'git -c user.name=bench -c user.email=bench@example.test';

async function sh(sandbox: Sandbox, script: string): Promise<string> {
  const r = await sandbox.exec(['bash', '-c', script], {
    timeoutMs: 300_000,
    maxOutputBytes: 64 << 20,
  });
  const out = r.output.toString('utf8');
  if (r.exitCode !== 0) throw new Error(`${script.slice(0, 80)} failed: ${out.slice(-500)}`);
  return out;
}

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = load();
  const sandboxes = benchSandboxes();
  const provider = sandboxes.provider;
  const rows: string[] = [];
  const verdicts: string[] = [];
  try {
    const sandbox = await provider.create({ image: IMAGE, taskId: 'bench-patch' });
    log(`building a ${FILES}-file repository in the sandbox`);
    // 2,000 text files of ~40 lines in 40 directories, committed as the base.
    await sh(
      sandbox,
      `cd /workspace && mkdir -p $(seq -f 'src/d%g' 0 39) && ` +
        `for i in $(seq 0 ${FILES - 1}); do seq -f "line %g of file $i" 1 40 > src/d$((i % 40))/f$i.txt; done && ` +
        `${GIT} init -q && ${GIT} add -A && ${GIT} commit -q -m base && git rev-parse HEAD`,
    );
    const base = (await sh(sandbox, 'cd /workspace && git rev-parse HEAD')).trim();
    const signal = new AbortController().signal;
    for (const n of CHANGED) {
      await sh(
        sandbox,
        `cd /workspace && git reset -q --hard ${base} && ` +
          `for i in $(seq 0 ${n - 1}); do echo "changed by the agent" >> src/d$((i % 40))/f$i.txt; done`,
      );
      // One warm-up of each, then alternate.
      await collectPatch(sandbox, base, { maxBytes: 64 << 20, signal });
      await sh(sandbox, `cd /workspace && git add -A && git diff --cached --binary ${base}`);
      const collect: number[] = [];
      const bare: number[] = [];
      let files = 0;
      let bytes = 0;
      for (let i = 0; i < SAMPLES; i++) {
        let t = performance.now();
        const got = await collectPatch(sandbox, base, { maxBytes: 64 << 20, signal });
        collect.push(performance.now() - t);
        files = got.files.length;
        bytes = got.patch.length;
        t = performance.now();
        await sh(sandbox, `cd /workspace && git add -A && git diff --cached --binary ${base}`);
        bare.push(performance.now() - t);
      }
      if (files !== n) throw new Error(`expected ${n} changed files, collectPatch saw ${files}`);
      const c = stats(collect);
      const b = stats(bare);
      rows.push(
        `| ${n} | ${(bytes / 1024).toFixed(0)} KiB | ${c.n} | ${fmt(c.p50)} | ${fmt(c.p95)} | ${fmt(b.p50)} | ${fmt(b.p95)} | ${fmt(c.p50 - b.p50)} | ${load()} |`,
      );
      verdicts.push(`${n}: ${fmt(c.p50)}`);
      log(`${n} files: collect p50 ${fmt(c.p50)}, bare p50 ${fmt(b.p50)}`);
    }
    await sandbox.destroy();
  } finally {
    await sandboxes.close();
  }
  await writeSection('patch', [
    ...header(
      'Patch collection (`packages/pipeline` `collectPatch`)',
      `${process.env.BENCH_SAMPLES ? `BENCH_SAMPLES=${SAMPLES} ` : ''}node --import tsx bench/patch.bench.ts`,
      started,
      loadStart,
    ),
    `- A real sandbox (\`${IMAGE}\`, default limits) holding a ${FILES}-file repository (40 lines each, 40 directories); each changed file gets one appended line.`,
    '- `collectPatch`: `git add -A`, `git diff --cached --binary` to a file, its size and the file list (`--raw --numstat -z`) in one exec, then a `readFile` of the patch.',
    '- Bare: one exec of `git add -A && git diff --cached --binary <base>` streaming the diff back — the least any collection can do.',
    '',
    '| changed files | patch size | runs | collect p50 | collect p95 | bare p50 | bare p95 | overhead (p50) | load (1 min) after |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
    `No target in the issue for this figure (p50 ${verdicts.join(', ')}); the bare column is the floor any collection has.`,
  ]);
}

await main();
