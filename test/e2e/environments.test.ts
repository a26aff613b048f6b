import { execFile } from 'node:child_process';
import { readFile, readdir, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The environment cache on the real stack: setup runs once per key, later tasks start from its
 * snapshot; keys are per tenant, lockfile, setup script; secrets never get into a snapshot; a
 * damaged entry is not used.
 */
const ACME = { authorization: 'Bearer acme-env-key-0123456789abcdef' };
const OTHER = { authorization: 'Bearer other-env-key-0123456789abcdef' };
const SECRET = 'env-secret-value-7d1f3a9c2b';
const SETUP =
  'mkdir -p node_modules/dep && echo "built $(date +%s%N)" > node_modules/dep/index.js && echo home-made > ~/.setup-home';

const bin = fileURLToPath(new URL('../../node_modules/.bin/patchbay', import.meta.url));
let stack: Stack;
const cacheDir = () => join(stack.config.dataDir, 'environments');

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({
          '.gitignore': 'node_modules/\n',
          'package-lock.json': '{"lockfileVersion": 3}\n',
          'README.md': '# App\n',
        })),
    },
    env: {
      PATCHBAY_ENV_CACHE_BYTES: '1g',
      PATCHBAY_API_KEYS: `acme:${ACME.authorization.slice(7)},other:${OTHER.authorization.slice(7)}`,
    },
    script: scenarioScript({
      look: steps([shell('cat node_modules/dep/index.js ~/.setup-home')]),
    }),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

async function run(
  headers = ACME,
  environment: Record<string, unknown> = {},
): Promise<{ task: any; events: any[] }> {
  const res = await call(
    stack,
    'POST',
    '/v1/tasks',
    {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Look around. SCENARIO:look',
      environment: {
        setup: SETUP,
        verify: 'test -f node_modules/dep/index.js && test -f ~/.setup-home',
        ...environment,
      },
    },
    headers,
  );
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const task = await waitForTask(stack, res.body.id, headers, 120_000);
  expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
  const { body } = await call(
    stack,
    'GET',
    `/v1/tasks/${task.id}/events?limit=1000`,
    undefined,
    headers,
  );
  return { task, events: body.events };
}

const setupRan = (events: any[]) => events.some((e) => e.type === 'command' && e.phase === 'setup');
const built = (events: any[]) => JSON.stringify(events).match(/built \d+/)?.[0];

describe('environment cache', () => {
  it('runs setup once per key; a second task starts from the snapshot and sees what setup made', async () => {
    const first = await run();
    expect(setupRan(first.events)).toBe(true);
    expect(first.task.timings).toMatchObject({ setupCached: false, readyAt: expect.any(String) });
    const second = await run();
    expect(setupRan(second.events)).toBe(false);
    expect(second.task.timings.setupCached).toBe(true);
    // The very files the first setup made (its timestamp), in the workspace and the home.
    expect(built(second.events)).toBe(built(first.events));
    expect(JSON.stringify(second.events)).toContain('home-made');
    for (const field of ['queuedMs', 'fetchMs', 'provisionMs', 'setupMs', 'agentMs', 'verifyMs'])
      expect(second.task.timings[field], field).toEqual(expect.any(Number));

    const listed = await call(stack, 'GET', '/v1/environments', undefined, ACME);
    expect(listed.body.environments).toEqual([
      expect.objectContaining({ repo: stack.git.url('app.git'), bytes: expect.any(Number) }),
    ]);
    expect(
      (await call(stack, 'GET', '/v1/environments', undefined, OTHER)).body.environments,
    ).toEqual([]);

    // Another tenant never hits it; setupAlways runs setup over the snapshot.
    expect(setupRan((await run(OTHER)).events)).toBe(true);
    const always = await run(ACME, { setupAlways: true });
    expect(setupRan(always.events)).toBe(true);
    expect(always.task.timings.setupCached).toBe(true);
  }, 300_000);

  it('misses when the lockfile or the setup script changes, and after a drop', async () => {
    await run();
    const repo = stack.git.repo('app.git');
    await repo.commit({ 'package-lock.json': '{"lockfileVersion": 3, "changed": true}\n' });
    const changed = await run();
    expect(changed.task.timings.setupCached).toBe(false);
    expect((await run()).task.timings.setupCached).toBe(true);
    expect((await run(ACME, { setup: `${SETUP} && true` })).task.timings.setupCached).toBe(false);

    // The command line shows them too.
    const cli = (args: string[]) =>
      promisify(execFile)(bin, args, {
        env: {
          ...process.env,
          PATCHBAY_URL: stack.url,
          PATCHBAY_API_KEY: ACME.authorization.slice(7),
        },
      });
    expect((await cli(['env', 'list'])).stdout).toContain(stack.git.url('app.git'));
    expect(
      JSON.parse((await cli(['env', 'list', '--json'])).stdout).environments.length,
    ).toBeGreaterThan(0);
    const dropped = await call(
      stack,
      'DELETE',
      `/v1/environments?repo=${encodeURIComponent(stack.git.url('app.git'))}`,
      undefined,
      ACME,
    );
    expect(dropped.body.dropped).toBeGreaterThan(0);
    expect((await run()).task.timings.setupCached).toBe(false);
    expect((await cli(['env', 'drop'])).stdout).toMatch(/^dropped [1-9]/);
    expect((await cli(['env', 'list'])).stdout).toContain('no cached environments');
  }, 300_000);

  it('takes no snapshot that would hold a secret, and none of them holds its value', async () => {
    const leaky = `${SETUP} && echo "$NPM_TOKEN" > node_modules/dep/.token`;
    const first = await run(ACME, { setup: leaky, secrets: { NPM_TOKEN: SECRET } });
    expect(first.task.timings.setupCached).toBe(false);
    expect(
      (await run(ACME, { setup: leaky, secrets: { NPM_TOKEN: SECRET } })).task.timings.setupCached,
    ).toBe(false);
    // Used in setup but not left behind: cached, and the value is in no snapshot.
    const careful = `${SETUP} && test -n "$NPM_TOKEN"`;
    await run(ACME, { setup: careful, secrets: { NPM_TOKEN: SECRET } });
    expect(
      (await run(ACME, { setup: careful, secrets: { NPM_TOKEN: SECRET } })).task.timings
        .setupCached,
    ).toBe(true);
    const files = (await readdir(cacheDir())).filter((n) => n.endsWith('.tar.gz'));
    expect(files.length).toBeGreaterThan(0);
    for (const name of files) {
      const tar = gunzipSync(await readFile(join(cacheDir(), name)));
      expect(tar.includes(Buffer.from(SECRET))).toBe(false);
      expect(tar.includes(Buffer.from('home-made'))).toBe(true);
    }
  }, 300_000);

  it('does not use a damaged entry or a half-written one: setup runs and the task succeeds', async () => {
    const setup = `${SETUP} && echo damaged-case > /dev/null`;
    await run(ACME, { setup });
    const before = new Set(await readdir(cacheDir()));
    expect((await run(ACME, { setup })).task.timings.setupCached).toBe(true);
    // Truncate every snapshot: each is checked against its SHA-256 before use.
    for (const name of before)
      if (name.endsWith('.tar.gz')) await truncate(join(cacheDir(), name), 100);
    const after = await run(ACME, { setup });
    expect(after.task.timings.setupCached).toBe(false);
    expect(setupRan(after.events)).toBe(true);
    expect((await run(ACME, { setup })).task.timings.setupCached).toBe(true);
  }, 300_000);
});
