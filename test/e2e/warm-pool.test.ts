import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The warm pool's preloaded checkouts on the real stack: after a task, a pooled container waits
 * with its commit checked out; the next task of the same tenant and repository from that commit
 * starts in it and ends with the same patch as a fresh checkout; a task from another commit, or
 * of another tenant, never sees that checkout.
 */
const ACME = { authorization: 'Bearer acme-pool-key-0123456789abcdef' };
const OTHER = { authorization: 'Bearer other-pool-key-0123456789abcdef' };
const docker = createDockerClient();
let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({
          'version.txt': 'one\n',
          'old.txt': 'only in the first commit\n',
        })),
    },
    env: {
      PATCHBAY_WARM_POOL_SIZE: '1',
      PATCHBAY_WARM_POOL_PRELOADS: '2',
      PATCHBAY_API_KEYS: `acme:${ACME.authorization.slice(7)},other:${OTHER.authorization.slice(7)}`,
    },
    script: scenarioScript({
      look: steps([
        shell('ls -A && cat version.txt && git status --short && echo edited >> version.txt'),
      ]),
    }),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

/** Pooled containers of this stack that no task has taken yet. */
async function waiting(): Promise<number> {
  const containers = await docker.listContainers({
    filters: { label: [`${LABELS.namespace}=${stack.config.redis.prefix}`] },
  });
  return containers.filter((c) => c.Names.some((n) => n.startsWith('/patchbay-pool-'))).length;
}

async function run(headers = ACME): Promise<{ task: any; output: string; patch: string }> {
  const res = await call(
    stack,
    'POST',
    '/v1/tasks',
    { repo: { url: stack.git.url('app.git') }, prompt: 'Look around. SCENARIO:look' },
    headers,
  );
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const task = await waitForTask(stack, res.body.id, headers, 120_000);
  expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
  const events = await call(
    stack,
    'GET',
    `/v1/tasks/${task.id}/events?limit=1000`,
    undefined,
    headers,
  );
  const output = events.body.events.find((e: any) => e.type === 'tool_output')?.output ?? '';
  const patch = await fetch(`${stack.url}/v1/tasks/${task.id}/patch`, { headers });
  return { task, output, patch: await patch.text() };
}

describe('warm pool with preloaded checkouts', () => {
  it('starts the next task of a tenant and repository in its checkout, with the same result', async () => {
    // The plain pool's container first, so the first task takes it and leaves the preload.
    await expect.poll(waiting, { timeout: 60_000 }).toBe(1);
    const first = await run();
    expect(first.task.timings.workspacePreloaded).toBe(false);
    expect(first.output).toContain('old.txt');

    // Two wait now: the plain one, and one with the first task's commit checked out.
    await expect.poll(waiting, { timeout: 60_000 }).toBe(2);
    const second = await run();
    expect(second.task.timings.workspacePreloaded).toBe(true);
    expect(second.task.baseCommit).toBe(first.task.baseCommit);
    // The same tree, a clean status, and byte for byte the same patch as a fresh checkout.
    expect(second.output).toBe(first.output);
    expect(second.patch).toBe(first.patch);
    expect(second.patch).toContain('+edited');

    // Another tenant, same repository and commit: a fresh checkout, not the preloaded one.
    await expect.poll(waiting, { timeout: 60_000 }).toBe(2);
    const other = await run(OTHER);
    expect(other.task.timings.workspacePreloaded).toBe(false);
    expect(other.patch).toBe(first.patch);
  });

  it('empties a preloaded checkout of an older commit before checking out the new one', async () => {
    await expect.poll(waiting, { timeout: 60_000 }).toBeGreaterThanOrEqual(2);
    const moved = await stack.git
      .repo('app.git')
      .commit({ 'version.txt': 'two\n', 'old.txt': null }, 'second commit');
    const next = await run();
    expect(next.task.baseCommit).toBe(moved);
    expect(next.task.timings.workspacePreloaded).toBe(false);
    // Nothing of the older checkout is left: no deleted file, the new content, a clean status.
    expect(next.output).not.toContain('old.txt');
    expect(next.output).toMatch(/^version\.txt\ntwo\n$/m);
    expect(next.output).not.toMatch(/^\s*[MADR?]{1,2} /m);
    expect(next.patch).toContain(' two\n+edited');
  });
});
