import { LABELS } from '@patchbay/sandbox';
// The engine the suite's worker uses (DOCKER_HOST, TLS included), wherever it is.
import { docker } from '@patchbay/sandbox/testing';
import { randomBytes } from 'node:crypto';
import { rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCanary } from '../support/git-server.js';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * Hostile repositories through the whole service: each task either runs with the tree as plain
 * data or is refused with a code, and nothing in a repository runs on the host. CI sizes are
 * small; `PATCHBAY_HOSTILE_FILES=100000 PATCHBAY_HOSTILE_BIG_MB=100` are the published ones.
 */
const FILES = Number(process.env.PATCHBAY_HOSTILE_FILES ?? 5000);
const BIG_MB = Number(process.env.PATCHBAY_HOSTILE_BIG_MB ?? 24);
/** Non-UTF-8 bytes in a file name: "caf\xe9.txt" in Latin-1. */
const LATIN1_NAME = Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]);

let stack: Stack;
let canary: Awaited<ReturnType<typeof startCanary>>;
const marker = join(tmpdir(), `patchbay-hostile-repo-ran-${process.pid}`);

beforeAll(async () => {
  canary = await startCanary('127.0.0.6');
  stack = await startStack({
    env: {
      // Every file takes at least a page of the /workspace tmpfs: 100,000 files need ~400 MiB.
      PATCHBAY_SANDBOX_MEMORY: '2g',
      PATCHBAY_SANDBOX_WORKSPACE_SIZE: '1g',
      // Below the big repository's size, so that it is refused after a bounded download.
      PATCHBAY_MAX_REPO_BYTES: `${Math.floor(BIG_MB * 0.66)}m`,
    },
    repos: {
      'hostile.git': async (repo) => {
        await repo.commit({
          'README.md': '# hostile\n',
          escape: { symlink: '../../../../../../etc/passwd' },
          'abs-link': { symlink: '/var/run/docker.sock' },
          'new\nline.txt': 'newline\n',
          '.gitattributes': 'filtered.txt filter=evil\n*.txt diff=evil\n* text eol=crlf\n',
          'filtered.txt': 'raw content\n',
          '.gitmodules': `[submodule "internal"]\n\tpath = vendor/internal\n\turl = ${canary.url}/internal.git\n[submodule "meta"]\n\tpath = vendor/meta\n\turl = http://169.254.169.254/latest.git\n`,
          'vendor/internal': { gitlink: '1234567890abcdef1234567890abcdef12345678' },
          'hooks/post-checkout': { content: `#!/bin/sh\ntouch ${marker}\n`, executable: true },
          '.githooks/pre-commit': { content: `#!/bin/sh\ntouch ${marker}\n`, executable: true },
          '.husky/pre-commit': { content: `#!/bin/sh\ntouch ${marker}\n`, executable: true },
        });
        // A name no JS string can make, and a filter configured in the repository's own config
        // (which a server-side checkout might honour).
        const head = await repo.head();
        const tree = (await repo.git('rev-parse', `${head}^{tree}`)).trim();
        const entries = await repo.lsTree(tree);
        entries.push({
          mode: '100644',
          type: 'blob',
          oid: await repo.blob('latin-1\n'),
          name: LATIN1_NAME,
        });
        await repo.commitTree(await repo.mktree(entries), 'raw names');
        await repo.git('config', 'filter.evil.smudge', `touch ${marker}`);
        await repo.git('config', 'filter.evil.clean', `touch ${marker}`);
        await repo.git('config', 'core.hooksPath', 'hooks');
      },
      'many.git': async (repo) => {
        // FILES files in directories of 1,000, all one blob: a big tree, a small pack.
        const blob = await repo.blob('x\n');
        const dirs: { mode: string; type: 'tree'; oid: string; name: string }[] = [];
        for (let d = 0; d * 1000 < FILES; d++) {
          const files = Array.from({ length: Math.min(1000, FILES - d * 1000) }, (_, i) => ({
            mode: '100644',
            type: 'blob' as const,
            oid: blob,
            name: `f${i}.txt`,
          }));
          dirs.push({ mode: '040000', type: 'tree', oid: await repo.mktree(files), name: `d${d}` });
        }
        await repo.commitTree(await repo.mktree(dirs), `${FILES} files`);
      },
      'big.git': async (repo) => {
        // Random bytes: nothing for git's compression to shrink.
        await repo.commit({ 'big.bin': randomBytes(BIG_MB * 1024 * 1024), 'README.md': 'big\n' });
      },
    },
    script: scenarioScript({
      inspect: steps([
        shell(
          'ls -la; echo ---; cat escape 2>&1 | head -1; ls -la abs-link; echo ---; cat filtered.txt; ' +
            'git status --porcelain 2>&1 | head -5; echo ---; ' +
            'timeout 20 git submodule update --init 2>&1 | tail -3; echo ---; ' +
            'git -c core.hooksPath=hooks commit -q --allow-empty -m x 2>&1 | tail -1; git reset -q --soft HEAD~1; true',
          { timeout_ms: 60_000 },
        ),
        shell('printf "edited\\n" >> README.md'),
      ]),
      count: steps([
        shell('find . -path ./.git -prune -o -type f -print | wc -l', { timeout_ms: 120_000 }),
        shell('echo added > added.txt'),
      ]),
      noop: steps([]),
    }),
  });
}, 300_000);

afterAll(async () => {
  await stack?.close();
  await canary?.close();
  await rm(marker, { force: true });
});

const submit = async (repo: string, scenario: string): Promise<string> => {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url(repo) },
    prompt: `SCENARIO:${scenario}`,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
};

const outputs = async (id: string): Promise<string[]> =>
  (await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`)).body.events
    .filter((e: any) => e.type === 'tool_output')
    .map((e: any) => e.output as string);

const noContainers = async (id: string) =>
  expect(
    await docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=${id}`] } }),
  ).toEqual([]);

describe('hostile repositories end to end', () => {
  it('runs on symlinks out, filters, hooks, submodules and odd names as plain data; nothing runs on the host', async () => {
    const id = await submit('hostile.git', 'inspect');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const [out] = await outputs(id);
    // The symlinks arrived as symlinks; following one reaches the sandbox's own files only.
    expect(out).toMatch(/escape -> \.\.\/\.\.\/\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd/);
    expect(out).toMatch(/abs-link -> \/var\/run\/docker\.sock/);
    // The filter was not applied: the content is the blob's.
    expect(out).toContain('raw content');
    // Odd names are in the tree as bytes.
    expect(out).toMatch(/ new\nline\.txt$/m);
    expect(out).toMatch(/ caf\ufffd\.txt$/m);
    expect(out).toMatch(/Failed to connect to 127\.0\.0\.6/);
    // The submodule fetch failed inside the sandbox (no network), and nothing reached the host.
    expect(canary.hits).toBe(0);
    await expect(stat(marker)).rejects.toMatchObject({ code: 'ENOENT' });
    // The patch is exactly the agent's edit: no filter, eol or hook changed anything else.
    const patch = await (await fetch(`${stack.url}/v1/tasks/${id}/patch`)).text();
    expect([...patch.matchAll(/^diff --git a\/(.+) b\//gm)].map((m) => m[1])).toEqual([
      'README.md',
    ]);
    expect(task.result.files).toMatchObject([{ path: 'README.md', status: 'modified' }]);
    await noContainers(id);
  });

  it(`handles a repository of ${FILES} files`, async () => {
    const id = await submit('many.git', 'count');
    const task = await waitForTask(stack, id, {}, 240_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const [count] = await outputs(id);
    expect(count).toMatch(new RegExp(`^${FILES}$`, 'm'));
    expect(task.result.files).toMatchObject([{ path: 'added.txt', status: 'added' }]);
    await noContainers(id);
  }, 300_000);

  it(`refuses a repository past the size cap (${BIG_MB} MB file) with repo_too_large`, async () => {
    const id = await submit('big.git', 'noop');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('repo_too_large');
    expect(task.error.phase).toBe('fetch');
    await noContainers(id);
    // The worker is fine: a normal task runs after it.
    const next = await waitForTask(stack, await submit('hostile.git', 'noop'), {}, 120_000);
    expect(next.status, JSON.stringify(next.error)).toBe('succeeded');
  });
});
