/**
 * Sandbox benchmark (issue 3, "Performance"): exec round trip through the exec channel against
 * `docker exec`, sandbox ready time cold and from the warm pool, and tar into /workspace.
 * Every comparison is measured in the same run. Writes its section of bench/RESULTS.md.
 *
 *   node --import tsx bench/sandbox.bench.ts            # 200+ samples per figure (a few minutes)
 *   BENCH_SAMPLES=50 node --import tsx bench/sandbox.bench.ts   # quicker, for a look
 */
import { execFile } from 'node:child_process';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { createDockerClient, type Sandbox } from '@patchbay/sandbox';
import { benchSandboxes, fmt, header, load, log, stats, verdict, writeSection } from './support.js';

const IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const TAR_MB = 50;
const TAR_RUNS = 5;

const docker = createDockerClient(process.env.DOCKER_HOST);

async function timeEach(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** `docker exec` through the engine API, the fastest way a worker could use it. */
async function dockerExec(
  container: Docker.Container,
  cmd: string[],
  stdin?: Buffer,
): Promise<number> {
  const exec = await container.exec({
    Cmd: cmd,
    AttachStdin: stdin !== undefined,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = (await exec.start({
    hijack: true,
    stdin: stdin !== undefined,
  })) as NodeJS.ReadWriteStream;
  const ended = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  stream.resume();
  if (stdin !== undefined) {
    for (let off = 0; off < stdin.length; off += 1 << 20)
      stream.write(stdin.subarray(off, off + (1 << 20)));
    stream.end();
  }
  await ended;
  const info = await exec.inspect();
  if (info.ExitCode !== 0) throw new Error(`docker exec ${cmd.join(' ')} exited ${info.ExitCode}`);
  return info.ExitCode;
}

async function dockerCli(id: string): Promise<void> {
  await promisify(execFile)('docker', ['exec', id, 'true']);
}

/** A tree of about `mb` MB (1000 files of random bytes in 50 directories), made in `sandbox`. */
async function makeTree(sandbox: Sandbox, mb: number): Promise<{ tar: Buffer; getMBps: number }> {
  const size = Math.floor((mb * 1e6) / 1000);
  const made = await sandbox.exec(
    `mkdir -p /tmp/tree && cd /tmp/tree && mkdir -p $(seq -f 'd%g' 0 49) && ` +
      `for i in $(seq 0 999); do head -c ${size} /dev/urandom > d$((i % 50))/f$i.bin; done`,
  );
  if (made.exitCode !== 0) throw new Error(`making the tree failed: ${made.output.toString()}`);
  const t = performance.now();
  const chunks: Buffer[] = [];
  for await (const chunk of await sandbox.getArchive('/tmp/tree')) chunks.push(chunk as Buffer);
  const tar = Buffer.concat(chunks);
  return { tar, getMBps: tar.length / 1e6 / ((performance.now() - t) / 1000) };
}

function chunked(buf: Buffer): Readable {
  return Readable.from(
    (function* () {
      for (let off = 0; off < buf.length; off += 64 * 1024)
        yield buf.subarray(off, off + 64 * 1024);
    })(),
  );
}

async function ready(sandbox: Sandbox): Promise<void> {
  const r = await sandbox.exec(['true']);
  if (r.exitCode !== 0) throw new Error('first exec failed');
}

/** The Docker engine's version and setup, for the section's header. */
async function engine(): Promise<string> {
  const version = await docker.version();
  const info = (await docker.info()) as { CgroupVersion?: string; Driver?: string };
  return (
    `Docker engine ${version.Version} (API ${version.ApiVersion}), ` +
    `cgroup v${info.CgroupVersion ?? '?'}, ${info.Driver ?? '?'}`
  );
}

async function main(): Promise<void> {
  const started = new Date();
  const loadStart = load();
  const coldSandboxes = benchSandboxes();
  const warmSandboxes = benchSandboxes(IMAGE);
  const cold = coldSandboxes.provider;
  const warm = warmSandboxes.provider;
  try {
    // --- exec round trip ---------------------------------------------------------------
    const sb = await cold.create({ image: IMAGE, taskId: 'bench-exec' });
    const container = docker.getContainer(sb.id);
    const execN = Math.max(SAMPLES, 200);
    for (let i = 0; i < 20; i++) await sb.exec(['true']);
    for (let i = 0; i < 5; i++) await dockerExec(container, ['true']);
    log(`exec round trip: ${execN} calls each`);
    const channel = stats(await timeEach(execN, () => sb.exec(['true'])));
    const channelShell = stats(await timeEach(execN, () => sb.exec('true')));
    const apiExec = stats(await timeEach(execN, () => dockerExec(container, ['true'])));
    const cliExec = stats(await timeEach(execN, () => dockerCli(sb.id)));

    // --- tar into /workspace -----------------------------------------------------------
    log(`tar: building a ${TAR_MB} MB tree`);
    const { tar: tree, getMBps } = await makeTree(sb, TAR_MB);
    const mb = tree.length / 1e6;
    const tarChannel: number[] = [];
    const tarDocker: number[] = [];
    for (let i = 0; i < TAR_RUNS; i++) {
      await sb.exec('rm -rf /workspace/*');
      let t = performance.now();
      await sb.putArchive(chunked(tree));
      tarChannel.push(mb / ((performance.now() - t) / 1000));
      await sb.exec('rm -rf /workspace/*');
      t = performance.now();
      await dockerExec(container, ['tar', '-x', '-f', '-', '-C', '/workspace'], tree);
      tarDocker.push(mb / ((performance.now() - t) / 1000));
    }
    const check = await sb.exec('find /workspace/tree -type f | wc -l');
    if (check.output.toString().trim() !== '1000') throw new Error('tar extraction incomplete');
    await sb.destroy();

    // --- sandbox ready -----------------------------------------------------------------
    const readyN = SAMPLES;
    log(`sandbox ready: ${readyN} cold, ${readyN} from the warm pool`);
    const coldReady: number[] = [];
    for (let i = 0; i < readyN; i++) {
      const t = performance.now();
      const s = await cold.create({ image: IMAGE, taskId: `bench-cold-${i}` });
      await ready(s);
      coldReady.push(performance.now() - t);
      await s.destroy();
    }
    const warmReady: number[] = [];
    for (let i = 0; i < readyN; i++) {
      while (warm.warm(IMAGE) < 1) await new Promise((r) => setTimeout(r, 5));
      const t = performance.now();
      const s = await warm.create({ image: IMAGE, taskId: `bench-warm-${i}` });
      await ready(s);
      warmReady.push(performance.now() - t);
      await s.destroy();
    }
    const coldStats = stats(coldReady);
    const warmStats = stats(warmReady);
    const tarC = stats(tarChannel);
    const tarD = stats(tarDocker);

    // --- report ------------------------------------------------------------------------
    const ratio = apiExec.p50 / channel.p50;
    await writeSection('sandbox', [
      ...header(
        'Sandbox (`packages/sandbox`)',
        `${process.env.BENCH_SAMPLES ? `BENCH_SAMPLES=${SAMPLES} ` : ''}node --import tsx bench/sandbox.bench.ts`,
        started,
        loadStart,
      ),
      `- ${await engine()}`,
      `- Image: \`${IMAGE}\`, operator default limits (1 CPU, 2 GiB), no network`,
      '',
      '### Exec round trip of a no-op command',
      '',
      '| path | calls | p50 | p95 | mean |',
      '| --- | ---: | ---: | ---: | ---: |',
      `| exec channel, \`['true']\` | ${channel.n} | ${fmt(channel.p50)} | ${fmt(channel.p95)} | ${fmt(channel.mean)} |`,
      `| exec channel, \`'true'\` (via \`bash -lc\`) | ${channelShell.n} | ${fmt(channelShell.p50)} | ${fmt(channelShell.p95)} | ${fmt(channelShell.mean)} |`,
      `| \`docker exec\` through the engine API (create, start, inspect) | ${apiExec.n} | ${fmt(apiExec.p50)} | ${fmt(apiExec.p95)} | ${fmt(apiExec.mean)} |`,
      `| \`docker exec\` CLI | ${cliExec.n} | ${fmt(cliExec.p50)} | ${fmt(cliExec.p95)} | ${fmt(cliExec.mean)} |`,
      '',
      `Target p50 ≤ 5 ms and at most a tenth of \`docker exec\`: p50 ${fmt(channel.p50)}, ` +
        `${ratio.toFixed(1)}× faster than the engine API's \`docker exec\` — ${verdict(channel.p50 <= 5 && ratio >= 10)}.`,
      '',
      '### Sandbox ready (create → first exec answers)',
      '',
      '| path | samples | p50 | p95 | mean |',
      '| --- | ---: | ---: | ---: | ---: |',
      `| cold (create, attach, start, first exec) | ${coldStats.n} | ${fmt(coldStats.p50)} | ${fmt(coldStats.p95)} | ${fmt(coldStats.mean)} |`,
      `| warm pool | ${warmStats.n} | ${fmt(warmStats.p50)} | ${fmt(warmStats.p95)} | ${fmt(warmStats.mean)} |`,
      '',
      `Targets p50 ≤ 400 ms cold — ${verdict(coldStats.p50 <= 400)}; ≤ 50 ms from the pool — ${verdict(warmStats.p50 <= 50)}.`,
      '',
      `### Tar of a ${mb.toFixed(1)} MB tree (1000 files, 50 directories) into /workspace`,
      '',
      '| path | runs | median | slowest |',
      '| --- | ---: | ---: | ---: |',
      `| \`putArchive\` (tar stream over the exec channel into \`tar -x\`) | ${tarC.n} | ${tarC.p50.toFixed(0)} MB/s | ${Math.min(...tarChannel).toFixed(0)} MB/s |`,
      `| \`docker exec -i … tar -x\` through the engine API | ${tarD.n} | ${tarD.p50.toFixed(0)} MB/s | ${Math.min(...tarDocker).toFixed(0)} MB/s |`,
      `| \`getArchive\` of the same tree out of the sandbox (the tree's source; one run) | 1 | ${getMBps.toFixed(0)} MB/s | |`,
      '',
      "(The engine's own archive API cannot write into a read-only-root container, even into its tmpfs.)",
    ]);
  } finally {
    await Promise.allSettled([coldSandboxes.close(), warmSandboxes.close()]);
  }
}

await main();
