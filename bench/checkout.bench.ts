/**
 * Workspace checkout benchmark (issue 7, the provision phase of task start): the tar of a
 * 2,000-file / ~20 MB commit built from the mirror (`git cat-file` of every blob, what every task
 * did before) against the same archive replayed from its recording beside the export (what a
 * task does now for a commit seen before), alternating in one run. Both are timed draining on the
 * host and extracting into a real sandbox.
 *
 *   node --import tsx bench/checkout.bench.ts
 *   BENCH_SAMPLES=5 node --import tsx bench/checkout.bench.ts
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { MirrorCache } from '@patchbay/git';
import { startGitServer } from '../test/support/git-server.js';
import { bigRepo } from './fixtures.js';
import { benchSandboxes, fmt, header, load, log, stats, writeSection } from './support.js';

const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 10);
const IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = load();
  const git = await startGitServer({ repos: { 'big.git': bigRepo(2000, 10_000) } });
  const root = await mkdtemp(join(tmpdir(), 'patchbay-bench-mirrors-'));
  const mirrors = new MirrorCache({
    root,
    policy: { hosts: [`http://${git.host}:${git.port}`] },
  });
  const sandboxes = benchSandboxes();
  const provider = sandboxes.provider;
  const url = git.url('big.git');
  const built = { drain: [] as number[], checkout: [] as number[] };
  const replayed = { drain: [] as number[], checkout: [] as number[] };
  let archiveBytes = 0;
  try {
    const { sha } = await mirrors.resolve(url, 'main');
    const exportDir = join(root, 'exports', sha);
    const forget = async (): Promise<void> => {
      for (const name of await readdir(exportDir).catch(() => [] as string[])) {
        if (name.startsWith('workspace-')) await rm(join(exportDir, name), { force: true });
      }
    };
    const drain = async (): Promise<number> => {
      const t = performance.now();
      let bytes = 0;
      await pipeline(
        await mirrors.exportWorkspace(url, sha),
        new Writable({
          write(chunk: Buffer, _encoding, callback) {
            bytes += chunk.length;
            callback();
          },
        }),
      );
      archiveBytes = bytes;
      return performance.now() - t;
    };
    const checkout = async (): Promise<number> => {
      const sandbox = await provider.create({ image: IMAGE, taskId: 'bench-checkout' });
      try {
        const t = performance.now();
        await mirrors.checkout(sandbox, url, sha);
        return performance.now() - t;
      } finally {
        await sandbox.destroy();
      }
    };
    await drain(); // makes the pack and index once, outside the figures
    log(`checkout: ${SAMPLES} rounds`);
    for (let i = 0; i < SAMPLES; i++) {
      await forget();
      built.drain.push(await drain());
      replayed.drain.push(await drain());
      await forget();
      built.checkout.push(await checkout());
      replayed.checkout.push(await checkout());
    }
  } finally {
    await sandboxes.close();
    await git.close();
    await rm(root, { recursive: true, force: true });
  }
  const row = (name: string, xs: number[]): string => {
    const s = stats(xs);
    return `| ${name} | ${s.n} | ${fmt(s.p50)} | ${fmt(s.p95)} | ${fmt(s.mean)} |`;
  };
  const b = stats(built.checkout);
  const r = stats(replayed.checkout);
  await writeSection('checkout', [
    ...header(
      'Workspace checkout (`packages/git` `exportWorkspace` / `checkout`)',
      `${process.env.BENCH_SAMPLES ? `BENCH_SAMPLES=${SAMPLES} ` : ''}node --import tsx bench/checkout.bench.ts`,
      started,
      loadStart,
    ),
    `- Repository: 2,000 files of 10 kB (random hex) in one commit; the archive (worktree + a pack of the commit + the index) is ${(archiveBytes / 1e6).toFixed(1)} MB. Warm mirror, pack and index already made.`,
    '- "built": the archive streamed from the mirror (`git ls-tree` + `git cat-file --batch` of every blob), as every task did before this change; "replayed": the recording of that archive kept beside the export since this change (first export of a commit records it). Alternating in one run.',
    '',
    '| path | samples | p50 | p95 | mean |',
    '| --- | ---: | ---: | ---: | ---: |',
    row('archive drained on the host, built', built.drain),
    row('archive drained on the host, replayed', replayed.drain),
    row('checkout into a sandbox (`putArchive` → `tar -x`), built', built.checkout),
    row('checkout into a sandbox (`putArchive` → `tar -x`), replayed', replayed.checkout),
    '',
    `Replaying saves ${fmt(b.p50 - r.p50)} at p50 of the provision phase (${fmt(b.p50)} → ${fmt(r.p50)}); what is left is the exec channel and \`tar -x\` inside the sandbox (see the sandbox section's tar figure).`,
  ]);
}

await main();
