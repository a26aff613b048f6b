import { spawn } from 'node:child_process';
import {
  lstat,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  readlink,
  rm,
  stat,
  utimes,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isPatchbayError, type PatchbayError } from '@patchbay/core';
import { MirrorCache, type ArchiveTarget } from '@patchbay/git';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  binaryBytes,
  startCanary,
  startGitServer,
  type FixtureRepo,
  type GitServer,
} from '../support/git-server.js';

let server: GitServer;
let cache: MirrorCache;
let cacheRoot: string;
let canary: Awaited<ReturnType<typeof startCanary>>;
let temps: string[] = [];

/** Non-UTF-8 bytes in a file name: "caf\xe9.txt" in Latin-1. */
const LATIN1_NAME = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]);
const LONG_NAME = `${'deep/'.repeat(30)}${'n'.repeat(120)}.txt`;

async function temp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-tree-'));
  temps.push(dir);
  return dir;
}

/** A git the test runs on its own fixtures: no system or global config either. */
async function hostGit(
  cwd: string,
  ...args: string[]
): Promise<{ code: number | null; out: string }> {
  const child = spawn('git', args, {
    cwd,
    env: {
      PATH: process.env.PATH,
      HOME: cwd,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_AUTHOR_NAME: 't',
      GIT_AUTHOR_EMAIL: 't@t',
      GIT_COMMITTER_NAME: 't',
      GIT_COMMITTER_EMAIL: 't@t',
    },
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  return { code, out };
}

/** Extracts a tar stream with GNU tar, as a sandbox would. */
async function extract(tar: Readable, dir: string): Promise<void> {
  const child = spawn('tar', ['-x', '--no-same-owner', '-f', '-', '-C', dir], {
    env: { PATH: process.env.PATH, LC_ALL: 'C' },
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  tar.pipe(child.stdin);
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  const noise = /^tar: Ignoring unknown extended header keyword 'hdrcharset'\n/gm;
  expect(stderr.replace(noise, '')).toBe('');
  expect(code).toBe(0);
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

async function streamError(stream: Readable): Promise<unknown> {
  try {
    for await (const _chunk of stream) {
      // drain
    }
  } catch (err) {
    return err;
  }
  return undefined;
}

/** Every blob of the fixture's commit, compared byte for byte with what was extracted. */
async function expectSameTree(repo: FixtureRepo, sha: string, dir: string): Promise<number> {
  let compared = 0;
  for (const { mode, type, oid, name } of await repo.lsTree(sha, true)) {
    const full = Buffer.concat([Buffer.from(`${dir}/`), name]);
    const label = name.toString();
    if (type === 'commit') {
      expect((await stat(full)).isDirectory(), label).toBe(true);
      expect(await readdir(full), label).toEqual([]);
      continue;
    }
    const content = await repo.gitBytes(['cat-file', 'blob', oid]);
    if (mode === '120000') {
      expect((await lstat(full)).isSymbolicLink(), label).toBe(true);
      expect(await readlink(full, { encoding: 'buffer' }), label).toEqual(content);
    } else {
      const info = await lstat(full);
      expect(info.isFile(), label).toBe(true);
      expect(info.mode & 0o777, label).toBe(mode === '100755' ? 0o755 : 0o644);
      expect((await readFile(full)).equals(content), label).toBe(true);
    }
    compared += 1;
  }
  return compared;
}

let marker: string;

beforeAll(async () => {
  canary = await startCanary('127.0.0.5');
  marker = join(tmpdir(), `patchbay-filter-ran-${process.pid}`);
  server = await startGitServer({
    repos: {
      'tree.git': async (repo) => {
        await repo.commit({ 'README.md': 'first\n' }, 'first');
        await repo.commit(
          {
            'README.md': '# tree\n',
            'bin/run.sh': { content: '#!/bin/sh\necho run\n', executable: true },
            'data/blob.bin': binaryBytes(70_000),
            'data/empty': '',
            'link-to-readme': { symlink: 'README.md' },
            escape: { symlink: '../../../../etc/passwd' },
            'dir-link': { symlink: 'data' },
            [LONG_NAME]: 'long\n',
            'ünïcödé.txt': 'utf8\n',
            'new\nline.txt': 'newline\n',
            'crlf.txt': 'windows\r\nline\r\n',
            // Attributes that would change the tree if anything honoured them.
            '.gitattributes':
              'ignored.txt export-ignore\nsubst.txt export-subst\nfiltered.txt filter=evil\n*.lf eol=crlf\nident.txt ident\n',
            'ignored.txt': 'must be exported\n',
            'subst.txt': 'commit $Format:%H$\n',
            'filtered.txt': 'raw content\n',
            'text.lf': 'lf\nonly\n',
            'ident.txt': '$Id$\n',
            // Hooks carried in the tree: data, never run.
            'hooks/post-checkout': { content: `#!/bin/sh\ntouch ${marker}\n`, executable: true },
            '.githooks/pre-commit': { content: `#!/bin/sh\ntouch ${marker}\n`, executable: true },
            '.gitmodules': `[submodule "internal"]\n\tpath = vendor/internal\n\turl = ${canary.url}/internal.git\n`,
            'vendor/internal': { gitlink: '1234567890abcdef1234567890abcdef12345678' },
            '.gitignore': 'data/\n',
          },
          'second',
        );
        // A non-UTF-8 name, which `git add` of a JS string cannot make.
        const head = await repo.head();
        const tree = (await repo.git('rev-parse', `${head}^{tree}`)).trim();
        const rawBlob = await repo.blob('latin-1 name\n');
        const entries = await repo.lsTree(tree);
        entries.push({ mode: '100644', type: 'blob', oid: rawBlob, name: LATIN1_NAME });
        await repo.commitTree(await repo.mktree(entries), 'third');
      },
      'root-only.git': async (repo) => {
        await repo.commit({ 'only.txt': 'root commit\n' }, 'root');
      },
      'dotgit.git': async (repo) => {
        await repo.commit({ 'ok.txt': 'ok\n' });
        const hook = await repo.blob(`#!/bin/sh\ntouch ${marker}\n`);
        const hooks = await repo.mktree([
          { mode: '100755', type: 'blob', oid: hook, name: 'post-checkout' },
        ]);
        const dotgit = await repo.mktree([
          { mode: '040000', type: 'tree', oid: hooks, name: 'hooks' },
        ]);
        await repo.commitTree(
          await repo.mktree([{ mode: '040000', type: 'tree', oid: dotgit, name: '.GIT' }]),
        );
      },
      'dotdot.git': async (repo) => {
        await repo.commit({ 'ok.txt': 'ok\n' });
        const file = await repo.blob('x\n');
        const inner = await repo.mktree([
          { mode: '100644', type: 'blob', oid: file, name: 'passwd' },
        ]);
        await repo.commitTree(
          await repo.mktree([{ mode: '040000', type: 'tree', oid: inner, name: '..' }]),
        );
      },
    },
  });
  cacheRoot = await mkdtemp(join(tmpdir(), 'patchbay-tree-mirrors-'));
  cache = new MirrorCache({
    root: cacheRoot,
    policy: { hosts: [`http://127.0.0.1:${server.port}`] },
    resolver: async (host) => {
      throw new Error(`a test tried to resolve ${host}`);
    },
  });
});

afterAll(async () => {
  await server.close();
  await canary.close();
  await rm(cacheRoot, { recursive: true, force: true });
  await rm(marker, { force: true });
});

afterEach(async () => {
  await Promise.all(temps.map((dir) => rm(dir, { recursive: true, force: true })));
  temps = [];
});

describe('exportTree', () => {
  it('streams the tree byte for byte: binary files, exec bits, symlinks, odd names', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    const dir = await temp();
    await extract(await cache.exportTree(url, sha), dir);
    const compared = await expectSameTree(server.repo('tree.git'), sha, dir);
    expect(compared).toBeGreaterThanOrEqual(20);
    // Symlinks stay symlinks, pointing wherever they point; nothing was followed.
    expect(await readlink(join(dir, 'escape'))).toBe('../../../../etc/passwd');
    expect((await lstat(join(dir, 'dir-link'))).isSymbolicLink()).toBe(true);
    const names = await readdir(dir, { encoding: 'buffer' });
    expect(names.some((name) => name.equals(LATIN1_NAME))).toBe(true);
    expect(await readFile(join(dir, 'new\nline.txt'), 'utf8')).toBe('newline\n');
  });

  it('honours no .gitattributes: export-ignore, export-subst, eol, ident and filters do nothing', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    // A filter driver in the host user's configuration must not be picked up either.
    const config = join(await temp(), 'gitconfig');
    await writeFile(
      config,
      `[filter "evil"]\n\tsmudge = touch ${marker}\n\tclean = touch ${marker}\n\trequired = true\n`,
    );
    const saved = process.env.GIT_CONFIG_GLOBAL;
    process.env.GIT_CONFIG_GLOBAL = config;
    const dir = await temp();
    try {
      await extract(await cache.exportTree(url, sha), dir);
    } finally {
      if (saved === undefined) delete process.env.GIT_CONFIG_GLOBAL;
      else process.env.GIT_CONFIG_GLOBAL = saved;
    }
    expect(await readFile(join(dir, 'ignored.txt'), 'utf8')).toBe('must be exported\n');
    expect(await readFile(join(dir, 'subst.txt'), 'utf8')).toBe('commit $Format:%H$\n');
    expect(await readFile(join(dir, 'filtered.txt'), 'utf8')).toBe('raw content\n');
    expect(await readFile(join(dir, 'text.lf'), 'utf8')).toBe('lf\nonly\n');
    expect(await readFile(join(dir, 'ident.txt'), 'utf8')).toBe('$Id$\n');
    expect(await readFile(join(dir, 'crlf.txt'), 'utf8')).toBe('windows\r\nline\r\n');
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('never fetches submodules: the internal URL in .gitmodules is never contacted', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    const dir = await temp();
    await extract(await cache.exportWorkspace(url, sha), dir);
    expect(await readdir(join(dir, 'vendor/internal'))).toEqual([]);
    expect(canary.hits).toBe(0);
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses trees with paths git refuses (.git in any case, ..)', async () => {
    for (const name of ['dotgit.git', 'dotdot.git']) {
      const url = server.url(name);
      const { sha } = await cache.resolve(url, 'main');
      const err = await caught(cache.exportTree(url, sha));
      expect(err.code, name).toBe('policy_refused');
      expect(err.details).toMatchObject({ reason: 'unsafe_path' });
      expect((await caught(cache.exportWorkspace(url, sha))).code).toBe('policy_refused');
    }
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('refuses a tree over maxBytes or maxEntries before streaming', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    expect((await caught(cache.exportTree(url, sha, { maxBytes: 10_000 }))).code).toBe(
      'repo_too_large',
    );
    expect((await caught(cache.exportTree(url, sha, { maxEntries: 5 }))).code).toBe(
      'repo_too_large',
    );
  });

  it('refuses a commit the mirror does not have', async () => {
    const url = server.url('tree.git');
    await cache.resolve(url, 'main');
    expect((await caught(cache.exportTree(url, 'f'.repeat(40)))).code).toBe('ref_not_found');
    expect((await caught(cache.exportTree(url, 'main'))).code).toBe('validation_error');
  });

  it('ends the stream with cancelled when aborted mid-way', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    const controller = new AbortController();
    const stream = await cache.exportTree(url, sha, { signal: controller.signal });
    stream.once('data', () => controller.abort());
    expect(await streamError(stream)).toMatchObject({ code: 'cancelled' });
  });
});

describe('exportWorkspace', () => {
  it('makes a git repository whose HEAD is the commit, with a clean status', async () => {
    const url = server.url('tree.git');
    const repo = server.repo('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    const dir = await temp();
    await extract(await cache.exportWorkspace(url, sha), dir);
    await expectSameTree(repo, sha, dir);

    expect((await hostGit(dir, 'rev-parse', 'HEAD')).out.trim()).toBe(sha);
    expect(await hostGit(dir, 'status', '--porcelain', '--ignored=no')).toEqual({
      code: 0,
      out: '',
    });
    expect((await hostGit(dir, 'log', '--format=%s')).out.trim()).toBe('third');
    expect((await hostGit(dir, 'fsck', '--no-dangling')).code).toBe(0);
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });

    // What the worker does after the agent: the patch against the base applies to a checkout.
    await writeFile(join(dir, 'README.md'), '# changed\n');
    await writeFile(join(dir, 'data', 'new.bin'), binaryBytes(300));
    await rm(join(dir, 'ignored.txt'));
    expect((await hostGit(dir, 'add', '-A', '-f')).code).toBe(0);
    const diff = await hostGit(dir, 'diff', '--cached', '--binary', sha);
    expect(diff.out).toContain('README.md');
    expect(diff.out).toContain('GIT binary patch');
    const check = await temp();
    expect((await hostGit(check, 'clone', '-q', '--no-checkout', repo.dir, '.')).code).toBe(0);
    expect((await hostGit(check, '-c', 'core.symlinks=true', 'checkout', '-q', sha)).code).toBe(0);
    await writeFile(join(check, 'patch.diff'), diff.out);
    expect(await hostGit(check, 'apply', '--index', 'patch.diff')).toEqual({ code: 0, out: '' });
    expect((await readFile(join(check, 'data', 'new.bin'))).equals(binaryBytes(300))).toBe(true);
  });

  it('puts HEAD on a branch when asked, and handles root commits', async () => {
    const url = server.url('root-only.git');
    const { sha } = await cache.resolve(url);
    const dir = await temp();
    await extract(await cache.exportWorkspace(url, sha, { branch: 'feature/x' }), dir);
    expect((await hostGit(dir, 'symbolic-ref', 'HEAD')).out.trim()).toBe('refs/heads/feature/x');
    expect((await hostGit(dir, 'rev-parse', 'HEAD')).out.trim()).toBe(sha);
    expect((await hostGit(dir, 'status', '--porcelain')).out).toBe('');
    await expect(stat(join(dir, '.git', 'shallow'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(
      caught(cache.exportWorkspace(url, sha, { branch: '../../x' })),
    ).resolves.toMatchObject({
      code: 'validation_error',
    });
  });

  it('reuses the cached pack for a commit it exported before', async () => {
    const url = server.url('root-only.git');
    const { sha } = await cache.resolve(url);
    await streamError(await cache.exportWorkspace(url, sha));
    const exportDir = join(cacheRoot, 'exports', sha);
    const first = await stat(exportDir);
    await streamError(await cache.exportWorkspace(url, sha));
    expect((await stat(exportDir)).ino).toBe(first.ino);
  });

  it('records the archive of a commit once and replays it byte for byte, per set of options', async () => {
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    const bytes = async (tar: Readable): Promise<Buffer> => {
      const chunks: Buffer[] = [];
      for await (const chunk of tar) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks);
    };
    const exportDir = join(cacheRoot, 'exports', sha);
    const recorded = async () =>
      (await readdir(exportDir)).filter((n) => n.startsWith('workspace-')).sort();
    // A consumer that stops early leaves no recording behind.
    const partial = await cache.exportWorkspace(url, sha, { branch: 'partial' });
    await new Promise<void>((resolve) => partial.once('data', () => resolve()));
    partial.destroy();
    // The recording is dropped asynchronously after the stream ends: wait (bounded) for it.
    for (let i = 0; i < 100 && (await recorded()).some((n) => n.includes('.tmp-')); i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    const before = await recorded();
    expect(before.some((n) => n.includes('.tmp-'))).toBe(false);

    const first = await bytes(await cache.exportWorkspace(url, sha, { branch: 'one' }));
    const made = await recorded();
    expect(made.length).toBe(before.length + 1);
    expect(await bytes(await cache.exportWorkspace(url, sha, { branch: 'one' }))).toEqual(first);
    const other = await bytes(await cache.exportWorkspace(url, sha, { branch: 'two' }));
    expect(other.equals(first)).toBe(false);
    expect((await recorded()).length).toBe(before.length + 2);
    const dir = await temp();
    await extract(await cache.exportWorkspace(url, sha, { branch: 'two' }), dir);
    expect((await hostGit(dir, 'symbolic-ref', 'HEAD')).out.trim()).toBe('refs/heads/two');
    expect((await hostGit(dir, 'status', '--porcelain', '--ignored=no')).out).toBe('');
  });

  it('removes temporary exports and recordings a dead worker left, once they are stale', async () => {
    const kept = await cache.resolve(server.url('root-only.git'));
    await streamError(await cache.exportWorkspace(server.url('root-only.git'), kept.sha));
    const exports = join(cacheRoot, 'exports');
    const old = new Date(Date.now() - 60 * 60_000);
    const staleDir = join(exports, `${'0'.repeat(40)}.tmp-dead01`);
    const staleFile = join(exports, kept.sha, 'workspace-0000.tar.tmp-dead02');
    const freshDir = join(exports, `${'1'.repeat(40)}.tmp-live01`);
    await mkdir(staleDir);
    await writeFile(join(staleDir, 'pack.pack'), 'partial');
    await writeFile(staleFile, 'partial');
    await mkdir(freshDir);
    await utimes(staleDir, old, old);
    await utimes(staleFile, old, old);
    // Making an export sweeps: the stale leftovers go, a temporary still being written stays.
    const url = server.url('tree.git');
    const { sha } = await cache.resolve(url, 'main');
    await rm(join(exports, sha), { recursive: true, force: true });
    await streamError(await cache.exportWorkspace(url, sha));
    await expect(stat(staleDir)).rejects.toThrow();
    await expect(stat(staleFile)).rejects.toThrow();
    expect((await stat(freshDir)).isDirectory()).toBe(true);
    expect((await stat(join(exports, kept.sha))).isDirectory()).toBe(true);
    await rm(freshDir, { recursive: true });
  });

  it('checks out into anything with putArchive', async () => {
    const url = server.url('root-only.git');
    const { sha } = await cache.resolve(url);
    const dir = await temp();
    const target: ArchiveTarget = {
      putArchive: async (tar, options) => {
        expect(options?.path).toBe('/workspace');
        await extract(tar, dir);
      },
    };
    await cache.checkout(target, url, sha);
    expect((await hostGit(dir, 'rev-parse', 'HEAD')).out.trim()).toBe(sha);
  });
});
