import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isPatchbayError, type PatchbayError } from '@patchbay/core';
import { MirrorCache, type HostResolver, type MirrorCacheOptions } from '@patchbay/git';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startCanary, startGitServer, type GitServer } from '../support/git-server.js';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** Tests never resolve names: every URL here is an IP literal on 127.0.0.0/8. */
const noDns: HostResolver = async (host) => {
  throw new Error(`a test tried to resolve ${host}`);
};

let server: GitServer;
let roots: string[] = [];
let log: { msg: string | undefined; obj: object }[] = [];

const logger = {
  debug: (obj: object, msg?: string) => log.push({ obj, msg }),
  info: (obj: object, msg?: string) => log.push({ obj, msg }),
  warn: (obj: object, msg?: string) => log.push({ obj, msg }),
  error: (obj: object, msg?: string) => log.push({ obj, msg }),
};

async function newCache(options: Partial<MirrorCacheOptions> = {}): Promise<MirrorCache> {
  const root = await mkdtemp(join(tmpdir(), 'patchbay-mirrors-'));
  roots.push(root);
  return new MirrorCache({
    root,
    policy: { hosts: [`http://127.0.0.1:${server.port}`] },
    resolver: noDns,
    logger,
    ...options,
  });
}

async function caught(promise: Promise<unknown>): Promise<PatchbayError> {
  try {
    await promise;
  } catch (err) {
    if (isPatchbayError(err)) return err;
    throw err;
  }
  throw new Error('expected a PatchbayError');
}

async function closedPort(): Promise<number> {
  const probe = createServer().listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const { port } = probe.address() as { port: number };
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

const requestsFor = (name: string) => server.requests.filter((r) => r.repo === name).length;

beforeAll(async () => {
  server = await startGitServer({
    repos: {
      'app.git': async (repo) => {
        await repo.commit({ 'README.md': '# app\n' }, 'first');
        await repo.tag('v0.1');
        await repo.commit({ 'src/main.ts': 'export {};\n' }, 'second');
        await repo.tag('v0.2', { annotated: true });
        await repo.branch('feature/login');
        await repo.checkout('feature/login');
        await repo.commit({ 'src/login.ts': 'export const login = 1;\n' }, 'login');
        await repo.checkout('main');
        await repo.commit({ 'CHANGELOG.md': 'third\n' }, 'third');
      },
      'master-default.git': async (repo) => {
        await repo.commit({ 'a.txt': 'a' });
        await repo.git('branch', '-m', 'main', 'trunk');
      },
    },
    hang: ['slow.git'],
    auth: ['private.git'],
  });
});

afterAll(async () => {
  await server.close();
});

afterEach(async () => {
  await Promise.all(roots.map((root) => rm(root, { recursive: true, force: true })));
  roots = [];
  log = [];
});

describe('MirrorCache.resolve', () => {
  it('resolves the default branch when no ref is given', async () => {
    const cache = await newCache();
    const head = await server.repo('app.git').head('main');
    const resolved = await cache.resolve(server.url('app.git'));
    expect(resolved).toEqual({ sha: head, url: server.url('app.git'), fetched: true });
    expect((await cache.resolve(server.url('app.git'), 'HEAD')).sha).toBe(head);
    const other = await cache.resolve(server.url('master-default.git'), null);
    expect(other.sha).toBe(await server.repo('master-default.git').head('trunk'));
  });

  it('resolves branches, nested branches, fully qualified refs and tags', async () => {
    const cache = await newCache();
    const repo = server.repo('app.git');
    const url = server.url('app.git');
    expect((await cache.resolve(url, 'main')).sha).toBe(await repo.head('main'));
    expect((await cache.resolve(url, 'feature/login')).sha).toBe(await repo.head('feature/login'));
    expect((await cache.resolve(url, 'refs/heads/main')).sha).toBe(await repo.head('main'));
    expect((await cache.resolve(url, 'v0.1')).sha).toBe(await repo.head('v0.1'));
    // An annotated tag is peeled to its commit.
    expect((await cache.resolve(url, 'v0.2')).sha).toBe(await repo.head('v0.2'));
  });

  it('resolves full and abbreviated shas, including ones no branch points at any more', async () => {
    const cache = await newCache();
    const repo = server.repo('app.git');
    const url = server.url('app.git');
    const first = await repo.head('v0.1');
    expect(await cache.resolve(url, first)).toMatchObject({ sha: first, fetched: true });
    expect((await cache.resolve(url, first.toUpperCase())).sha).toBe(first);
    const login = await repo.head('feature/login');
    expect((await cache.resolve(url, login.slice(0, 10))).sha).toBe(login);
  });

  it('skips the fetch when the requested commit is already mirrored', async () => {
    const cache = await newCache();
    const url = server.url('app.git');
    const { sha } = await cache.resolve(url, 'main');
    const before = requestsFor('app.git');
    expect(await cache.resolve(url, sha)).toMatchObject({ sha, fetched: false });
    expect(requestsFor('app.git')).toBe(before);
    expect(log.some((l) => l.msg?.includes('fetch skipped'))).toBe(true);
  });

  it('fetches incrementally when the mirror is warm', async () => {
    await server.addRepo('moving.git', async (repo) => {
      await repo.commit({ 'a.txt': 'one' });
    });
    const repo = server.repo('moving.git');
    const cache = await newCache();
    const url = server.url('moving.git');
    const first = await cache.resolve(url, 'main');
    const next = await repo.commit({ 'b.txt': 'two' });
    const second = await cache.resolve(url, 'main');
    expect(second).toMatchObject({ sha: next, fetched: true });
    expect(second.sha).not.toBe(first.sha);
    // The earlier commit is still there: nothing was re-cloned.
    expect((await cache.resolve(url, first.sha)).fetched).toBe(false);
  });

  it('answers from the mirror within refreshAfterMs', async () => {
    const cache = await newCache({ refreshAfterMs: 60_000 });
    const url = server.url('app.git');
    await cache.resolve(url, 'main');
    const before = requestsFor('app.git');
    expect((await cache.resolve(url, 'main')).fetched).toBe(false);
    expect(requestsFor('app.git')).toBe(before);
  });

  it('answers the default branch from the mirror within refreshAfterMs, and asks again after', async () => {
    const cache = await newCache({ refreshAfterMs: 300 });
    const url = server.url('app.git');
    const first = await cache.resolve(url, null);
    expect(first.fetched).toBe(true);
    const before = requestsFor('app.git');
    const again = await cache.resolve(url, null);
    expect(again).toMatchObject({ sha: first.sha, fetched: false });
    expect(requestsFor('app.git')).toBe(before);
    await new Promise((r) => setTimeout(r, 350));
    expect((await cache.resolve(url, null)).fetched).toBe(true);
    expect(requestsFor('app.git')).toBeGreaterThan(before);
  });

  it('always asks the remote with refreshAfterMs 0', async () => {
    const cache = await newCache({ refreshAfterMs: 0 });
    const url = server.url('app.git');
    await cache.resolve(url, 'main');
    expect((await cache.resolve(url, 'main')).fetched).toBe(true);
    expect((await cache.resolve(url, null)).fetched).toBe(true);
    expect((await cache.resolve(url, null)).fetched).toBe(true);
  });

  it('serialises concurrent resolves of one repository', async () => {
    await server.addRepo('busy.git', async (repo) => {
      await repo.commit({ 'a.txt': 'a' });
    });
    const url = server.url('busy.git');
    // Two caches on one directory: two workers sharing a data dir.
    const one = await newCache();
    const two = await newCache({ root: one.root });
    const results = await Promise.all([
      one.resolve(url, 'main'),
      two.resolve(url, 'main'),
      one.resolve(url),
      two.resolve(url, 'main'),
      one.resolve(url, 'main'),
    ]);
    expect(new Set(results.map((r) => r.sha)).size).toBe(1);
    expect(server.maxInFlight('busy.git')).toBe(1);
  });

  it('waits for another process holding the repository lock, and recovers from one killed', async () => {
    await server.addRepo('shared.git', async (repo) => {
      await repo.commit({ 'a.txt': 'a' });
    });
    const cache = await newCache();
    const url = server.url('shared.git');
    const lockPath = `${cache.mirror(url).gitDir}.lock`;
    const holder = (holdMs: number) => {
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'test/support/lock-holder.ts', lockPath, String(holdMs)],
        { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      child.stderr.on('data', (chunk: Buffer) =>
        process.stderr.write(`holder: ${chunk.toString()}`),
      );
      const exited = once(child, 'exit');
      return new Promise<{ child: typeof child; exited: typeof exited }>((resolve) =>
        child.stdout.once('data', () => resolve({ child, exited })),
      );
    };

    const live = await holder(1500);
    const started = Date.now();
    await cache.resolve(url, 'main');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    await live.exited;

    const doomed = await holder(60_000);
    doomed.child.kill('SIGKILL');
    await doomed.exited;
    const again = Date.now();
    await cache.resolve(url, 'main');
    expect(Date.now() - again).toBeLessThan(5000);
    expect(log.some((l) => l.msg === 'took over a stale repository lock')).toBe(true);
  });

  it('reports an unknown branch, tag or commit as ref_not_found', async () => {
    const cache = await newCache();
    const url = server.url('app.git');
    for (const ref of ['no-such-branch', 'v9.9', 'a'.repeat(40), 'abcdef12']) {
      const err = await caught(cache.resolve(url, ref));
      expect(err.code, ref).toBe('ref_not_found');
    }
  });

  it('refuses option-looking and malformed refs before fetching anything', async () => {
    const cache = await newCache();
    const url = server.url('app.git');
    const before = requestsFor('app.git');
    for (const ref of [
      '-oops',
      '--upload-pack=touch x',
      'a..b',
      'main:evil',
      'x\ny',
      'a b',
      '@{1}',
      'refs/heads/.hidden',
      'x.lock',
    ]) {
      const err = await caught(cache.resolve(url, ref));
      expect(err.code, ref).toBe('validation_error');
    }
    expect(requestsFor('app.git')).toBe(before);
  });

  it('refuses a URL outside the policy before any connection', async () => {
    const cache = await newCache();
    const canary = await startCanary('127.0.0.3');
    try {
      for (const url of [
        `${canary.url}/app.git`,
        'file:///etc',
        'ext::sh -c id',
        `http://127.0.0.1:${server.port + 1}/x.git`,
      ]) {
        const err = await caught(cache.resolve(url, 'main'));
        expect(err.code, url).toBe('repo_url_refused');
      }
      expect(canary.hits).toBe(0);
    } finally {
      await canary.close();
    }
  });

  it('connects only to the address the policy checked (DNS pinned)', async () => {
    // The server listens on 127.0.0.6 only. Unpinned, curl would take git.localhost to
    // 127.0.0.1 by itself (no DNS for *.localhost) and find nothing there.
    const pinnedServer = await startGitServer({
      host: '127.0.0.6',
      repos: { 'pinned.git': async (repo) => void (await repo.commit({ 'a.txt': 'a' })) },
    });
    const lookups: string[] = [];
    try {
      const cache = await newCache({
        policy: { hosts: [`http://git.localhost:${pinnedServer.port}`] },
        resolver: async (host) => {
          lookups.push(host);
          return [{ address: '127.0.0.6', family: 4 }];
        },
      });
      const url = `http://git.localhost:${pinnedServer.port}/pinned.git`;
      const resolved = await cache.resolve(url, 'main');
      expect(resolved.sha).toBe(await pinnedServer.repo('pinned.git').head());
      expect(lookups).toEqual(['git.localhost']);
      // A commit already mirrored needs no DNS either.
      await cache.resolve(url, resolved.sha);
      expect(lookups).toEqual(['git.localhost']);
    } finally {
      await pinnedServer.close();
    }
  });

  it('reports a closed port as repo_unreachable', async () => {
    const port = await closedPort();
    const cache = await newCache({ policy: { hosts: [`http://127.0.0.1:${port}`] } });
    const err = await caught(cache.resolve(`http://127.0.0.1:${port}/app.git`, 'main'));
    expect(err.code).toBe('repo_unreachable');
    expect(err.details).toMatchObject({ reason: 'network' });
  });

  it('reports a missing repository and one needing credentials as repo_unreachable', async () => {
    const cache = await newCache();
    const missing = await caught(cache.resolve(server.url('missing.git'), 'main'));
    expect(missing.code).toBe('repo_unreachable');
    expect(missing.details).toMatchObject({ reason: 'not_found' });
    const locked = await caught(cache.resolve(server.url('private.git'), 'main'));
    expect(locked.code).toBe('repo_unreachable');
    expect(locked.details).toMatchObject({ reason: 'auth' });
  });

  it('does not follow a redirect, not even to an allowed host', async () => {
    const canary = await startCanary('127.0.0.2');
    const redirecting = await startGitServer({
      redirects: { 'moved.git': `${canary.url}/app.git` },
    });
    try {
      const cache = await newCache({
        policy: { hosts: [`http://127.0.0.1:${redirecting.port}`, canary.url] },
      });
      const err = await caught(cache.resolve(redirecting.url('moved.git'), 'main'));
      expect(err.code).toBe('repo_unreachable');
      expect(err.details).toMatchObject({ reason: 'redirect' });
      expect(canary.hits).toBe(0);
    } finally {
      await redirecting.close();
      await canary.close();
    }
  });

  it('times out a fetch that hangs, killing git', async () => {
    const cache = await newCache({ fetchTimeoutMs: 1500 });
    const started = Date.now();
    const err = await caught(cache.resolve(server.url('slow.git'), 'main'));
    expect(err.code).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(10_000);
    const ps = spawn('ps', ['-eo', 'args']);
    let out = '';
    ps.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await once(ps, 'close');
    expect(out).not.toContain(server.url('slow.git'));
  });

  it('stops a fetch when the task is cancelled', async () => {
    const cache = await newCache();
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const err = await caught(
      cache.resolve(server.url('slow.git'), 'main', { signal: controller.signal }),
    );
    expect(err.code).toBe('cancelled');
  });

  it('refuses a repository over the size cap and deletes its mirror', async () => {
    await server.addRepo('big.git', async (repo) => {
      // Random bytes do not compress: the pack is as big as the file.
      const bytes = Buffer.alloc(3 * 1024 * 1024);
      for (let i = 0; i < bytes.length; i += 4)
        bytes.writeUInt32LE((Math.random() * 2 ** 32) >>> 0, i);
      await repo.commit({ 'big.bin': bytes });
    });
    const cache = await newCache({ maxMirrorBytes: 512 * 1024 });
    const err = await caught(cache.resolve(server.url('big.git'), 'main'));
    expect(err.code).toBe('repo_too_large');
    const gitDir = cache.mirror(server.url('big.git')).gitDir;
    const packs = await readdir(join(gitDir, 'objects', 'pack')).catch(() => [] as string[]);
    expect(packs.filter((p) => p.startsWith('tmp_'))).toEqual([]);
    // Small repositories still work with the same cache.
    expect((await cache.resolve(server.url('app.git'), 'main')).fetched).toBe(true);
  });

  it('never runs hooks, even ones planted in the mirror', async () => {
    const cache = await newCache();
    const url = server.url('app.git');
    const gitDir = cache.mirror(url).gitDir;
    const { sha } = await cache.resolve(url, 'v0.1');
    const marker = join(roots[0]!, 'hook-ran');
    await mkdir(join(gitDir, 'hooks'), { recursive: true });
    for (const hook of ['reference-transaction', 'post-merge', 'post-checkout', 'pre-auto-gc']) {
      await writeFile(join(gitDir, 'hooks', hook), `#!/bin/sh\necho ${hook} >> '${marker}'\n`);
      await chmod(join(gitDir, 'hooks', hook), 0o755);
    }
    await cache.resolve(url, 'main');
    await cache.resolve(url, 'feature/login');
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });

    // The planted hook is real: plain git with default settings runs it.
    const child = spawn('git', ['--git-dir', gitDir, 'update-ref', 'refs/x', sha], {
      env: { PATH: process.env.PATH, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    });
    await once(child, 'close');
    await expect(stat(marker)).resolves.toBeTruthy();
  });

  it("ignores the host user's git configuration (insteadOf to an internal host)", async () => {
    const canary = await startCanary('127.0.0.4');
    const config = join(roots[0] ?? tmpdir(), `gitconfig-${process.pid}`);
    await writeFile(
      config,
      `[url "${canary.url}/"]\n\tinsteadOf = http://127.0.0.1:${server.port}/\n[core]\n\thooksPath = /tmp\n`,
    );
    const saved = [process.env.GIT_CONFIG_GLOBAL, process.env.GIT_CONFIG_PARAMETERS] as const;
    process.env.GIT_CONFIG_GLOBAL = config;
    process.env.GIT_CONFIG_PARAMETERS = `'url.${canary.url}/.insteadof'='http://127.0.0.1:${server.port}/'`;
    try {
      const cache = await newCache();
      await cache.resolve(server.url('app.git'), 'main');
      expect(canary.hits).toBe(0);
    } finally {
      if (saved[0] === undefined) delete process.env.GIT_CONFIG_GLOBAL;
      else process.env.GIT_CONFIG_GLOBAL = saved[0];
      if (saved[1] === undefined) delete process.env.GIT_CONFIG_PARAMETERS;
      else process.env.GIT_CONFIG_PARAMETERS = saved[1];
      await rm(config, { force: true });
      await canary.close();
    }
  });
});
