import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRedis } from '@patchbay/queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHubApi, type GitHubApi } from '../support/forge-server.js';
import { applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import {
  type Stack,
  call,
  killWorker,
  lifecycleOf,
  spawnWorker,
  startStack,
  waitForTask,
} from '../support/stack.js';
import type { ChildProcess } from 'node:child_process';

/**
 * Delivery on the real stack: the worker commits base + patch in its own mirror and pushes it to
 * a smart-HTTP git server that takes pushes only with the right token; pull requests go to a
 * GitHub API held to GitHub's published OpenAPI description.
 */
const run = promisify(execFile);
const TOKEN = 'push-token-3f9a1c7e5b2d4086';
const OWN_TOKEN = 'task-own-token-9c1e7a3b5d20f468';
const REPO = 'org/app.git';
const bin = fileURLToPath(new URL('../../node_modules/.bin/patchbay', import.meta.url));

const CREATE = `*** Begin Patch
*** Add File: notes.txt
+line one
*** End Patch`;
const EDIT = `*** Begin Patch
*** Update File: notes.txt
@@
 line one
+line two
*** End Patch`;

let stack: Stack;
let github: GitHubApi;
/** The worker runs as a process of its own, logging at debug level: its output is kept here. */
let worker: ChildProcess;
let workerLog = '';

beforeAll(async () => {
  github = await startGitHubApi({ token: TOKEN });
  stack = await startStack({
    worker: false,
    repos: {
      [REPO]: async (repo) => {
        await repo.commit({ 'README.md': '# App\n' });
        await repo.branch('taken');
      },
    },
    git: { pushTokens: { [REPO]: [TOKEN, OWN_TOKEN] } },
    env: (git) => ({
      PATCHBAY_GIT_CREDENTIALS: `${git.host}:${git.port}=${TOKEN}`,
      PATCHBAY_FORGES: `${git.host}:${git.port}=github:${github.url}`,
      PATCHBAY_PUBLIC_URL: 'https://patchbay.example',
    }),
    // The agent also prints its environment: no credential may be in it, nor in the log.
    script: scenarioScript({
      create: steps([applyPatch(CREATE), shell('env | sort')]),
      edit: steps([applyPatch(EDIT)]),
    }),
  });
  const spawned = spawnWorker(stack, `${stack.config.worker.id}-delivery`, { LOG_LEVEL: 'debug' });
  worker = spawned.child;
  worker.stdout!.on('data', (chunk: Buffer) => (workerLog += chunk.toString()));
  await spawned.ready;
}, 120_000);

afterAll(async () => {
  if (worker) await killWorker(worker, 'SIGTERM');
  await stack?.close();
  await github?.close();
});

async function submit(extra: Record<string, unknown> = {}): Promise<any> {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url(REPO), ref: 'main' },
    prompt: 'Add the notes file. SCENARIO:create',
    environment: { verify: 'grep -q "line one" notes.txt' },
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  const task = await waitForTask(stack, res.body.id, {}, 120_000);
  expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
  return task;
}

async function delivered(id: string): Promise<any> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { body } = await call(stack, 'GET', `/v1/tasks/${id}`);
    if (['delivered', 'failed'].includes(body.delivery?.status)) return body;
    if (Date.now() > deadline) throw new Error(`delivery still ${body.delivery?.status}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

/** The tree of base + the task's patch, computed in the served repository itself. */
async function expectedTree(id: string, base: string): Promise<string> {
  const patch = Buffer.from(await (await fetch(`${stack.url}/v1/tasks/${id}/patch`)).arrayBuffer());
  const repo = stack.git.repo(REPO);
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-tree-'));
  try {
    const env = { ...process.env, GIT_INDEX_FILE: join(dir, 'index') };
    const git = (args: string[], input?: Buffer) => {
      const child = run('git', ['-C', repo.dir, ...args], { env });
      // A command that reads no input may exit before its stdin is closed (EPIPE); a failed
      // command shows as the rejection of `child` anyway.
      child.child.stdin!.on('error', () => undefined);
      child.child.stdin!.end(input ?? '');
      return child;
    };
    await git(['read-tree', base]);
    await git(['apply', '--cached', '--binary', '-'], patch);
    return (await git(['write-tree'])).stdout.trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const remote = (args: string[]) => stack.git.repo(REPO).git(...args);

/** Every value under the stack's Redis prefix: records, logs, outbox, jobs. */
async function everythingInRedis(): Promise<string> {
  const redis = createRedis({ url: stack.config.redis.url });
  try {
    const keys = await redis.keys(`${stack.config.redis.prefix}:*`);
    const dump = await Promise.all(keys.map((k) => redis.dumpBuffer(k)));
    return dump.map((d) => d?.toString('latin1') ?? '').join('\n');
  } finally {
    redis.disconnect();
  }
}

describe('delivery', () => {
  it('pushes the patch to a branch and opens a pull request when the task succeeds', async () => {
    const task = await submit({
      delivery: { branch: 'feature/notes', pullRequest: { title: 'Add notes', draft: true } },
    });
    const done = await delivered(task.id);
    expect(done.status).toBe('succeeded');
    expect(done.delivery).toMatchObject({
      status: 'delivered',
      branch: 'feature/notes',
      commit: expect.stringMatching(/^[0-9a-f]{40}$/),
      pushedAt: expect.any(String),
      pullRequest: { number: 1, url: expect.stringContaining('/pull/1') },
      error: null,
    });
    // The branch on the remote is that commit, its tree base + patch, its parent the base.
    expect((await remote(['rev-parse', 'refs/heads/feature/notes'])).trim()).toBe(
      done.delivery.commit,
    );
    expect((await remote(['rev-parse', 'feature/notes^{tree}'])).trim()).toBe(
      await expectedTree(task.id, done.baseCommit),
    );
    expect((await remote(['rev-parse', 'feature/notes^'])).trim()).toBe(done.baseCommit);
    const message = await remote(['log', '-1', '--format=%an <%ae>%n%B', 'feature/notes']);
    expect(message).toContain('Patchbay <patchbay@localhost>');
    expect(message).toContain('Add the notes file.');
    expect(message).toContain(`Patchbay-Task: ${task.id}`);
    // The pull request: every request held to GitHub's description, the body as promised.
    expect(github.violations).toEqual([]);
    expect(github.pulls).toEqual([
      expect.objectContaining({
        owner: 'org',
        repo: 'app',
        head: 'feature/notes',
        base: 'main',
        title: 'Add notes',
        draft: true,
      }),
    ]);
    const body = github.pulls[0]!.body;
    expect(body).toContain('Passed: `grep -q "line one" notes.txt`');
    expect(body).toContain(`https://patchbay.example/v1/tasks/${task.id}`);
    expect(await lifecycleOf(stack, task.id)).toEqual([
      'task.queued',
      'task.started',
      'task.succeeded',
      'task.delivered',
    ]);

    // A follow-up that succeeds is delivered too: a commit on top of the first, same request.
    const reply = await call(stack, 'POST', `/v1/tasks/${task.id}/messages`, {
      prompt: 'Add a second line. SCENARIO:edit',
    });
    expect(reply.status, JSON.stringify(reply.body)).toBe(202);
    expect((await waitForTask(stack, task.id, {}, 120_000)).status).toBe('succeeded');
    let second: any;
    for (const deadline = Date.now() + 60_000; Date.now() < deadline;) {
      second = (await call(stack, 'GET', `/v1/tasks/${task.id}`)).body;
      if (second.delivery.turn === 2 && second.delivery.status !== 'pending') break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    expect(second.delivery).toMatchObject({
      status: 'delivered',
      turn: 2,
      pullRequest: { number: 1 },
    });
    expect(second.delivery.commit).not.toBe(done.delivery.commit);
    expect((await remote(['rev-parse', 'feature/notes^'])).trim()).toBe(done.delivery.commit);
    expect((await remote(['rev-parse', 'feature/notes^{tree}'])).trim()).toBe(
      await expectedTree(task.id, done.baseCommit),
    );
    expect(await remote(['show', 'feature/notes:notes.txt'])).toBe('line one\nline two\n');

    // Delivering again to the same branch finds the branch its own and the pull request open:
    // nothing new to push.
    const again = await call(stack, 'POST', `/v1/tasks/${task.id}/deliver`, {
      pullRequest: {},
    });
    expect(again.status, JSON.stringify(again.body)).toBe(200);
    expect(again.body.delivery).toMatchObject({
      branch: 'feature/notes',
      commit: second.delivery.commit,
      pullRequest: { number: 1 },
    });
    expect(github.pulls).toHaveLength(1);
    expect(github.violations).toEqual([]);
  }, 180_000);

  it('refuses the default branch and a branch the task did not make, and a wrong token, leaving the task as it was', async () => {
    const task = await submit();
    expect(task.delivery).toBeNull();
    const main = await call(stack, 'POST', `/v1/tasks/${task.id}/deliver`, { branch: 'main' });
    expect(main.status, JSON.stringify(main.body)).toBe(409);
    expect(main.body.error.code).toBe('branch_protected');
    const taken = await call(stack, 'POST', `/v1/tasks/${task.id}/deliver`, { branch: 'taken' });
    expect(taken.status).toBe(409);
    expect(taken.body.error.code).toBe('branch_exists');

    const refusalsBefore = stack.git.pushRefusals.length;
    const wrong = await call(stack, 'POST', `/v1/tasks/${task.id}/deliver`, {
      branch: 'patchbay/wrong-token',
      token: 'not-the-token-1234567890',
    });
    expect(wrong.status, JSON.stringify(wrong.body)).toBe(422);
    expect(wrong.body.error.code).toBe('delivery_auth_failed');
    expect(stack.git.pushRefusals.length).toBeGreaterThan(refusalsBefore);
    const after = (await call(stack, 'GET', `/v1/tasks/${task.id}`)).body;
    expect(after.status).toBe('succeeded');
    expect(after.result).toEqual(task.result);
    expect(after.delivery).toMatchObject({
      status: 'failed',
      error: { code: 'delivery_auth_failed' },
    });
    await expect(
      remote(['rev-parse', '--verify', '--quiet', 'refs/heads/patchbay/wrong-token']),
    ).rejects.toThrow();
    // Bad requests: a branch name git would refuse, a task that has not succeeded.
    const bad = await call(stack, 'POST', `/v1/tasks/${task.id}/deliver`, { branch: '../main' });
    expect(bad.status).toBe(400);
  }, 180_000);

  it("pushes with the task's own token, which appears in no record, log, event or sandbox", async () => {
    const task = await submit({ delivery: { branch: 'patchbay/own', token: OWN_TOKEN } });
    // The agent ran `env` in the sandbox while the token was held: its output is in the log.
    const { body: log } = await call(stack, 'GET', `/v1/tasks/${task.id}/events?limit=1000`);
    expect(JSON.stringify(log.events)).toContain('PATH=');
    const done = await delivered(task.id);
    expect(done.delivery).toMatchObject({ status: 'delivered', branch: 'patchbay/own' });
    expect((await remote(['rev-parse', 'refs/heads/patchbay/own'])).trim()).toBe(
      done.delivery.commit,
    );
    expect(workerLog).toContain('"msg":"delivered"');
    const dump = [
      JSON.stringify(done),
      JSON.stringify(log),
      await everythingInRedis(),
      workerLog,
    ].join('\n');
    for (const secret of [OWN_TOKEN, TOKEN]) expect(dump).not.toContain(secret);
  }, 180_000);

  it('delivers from the command line: patchbay deliver <id> --branch … --pr', async () => {
    const task = await submit();
    const { stdout } = await run(
      bin,
      ['deliver', task.id, '--branch', 'cli/notes', '--pr', '--title', 'From the CLI'],
      {
        env: { ...process.env, PATCHBAY_URL: stack.url },
      },
    );
    expect(stdout).toMatch(/pushed [0-9a-f]{12} to cli\/notes/);
    expect(stdout).toMatch(/pull request #\d+: https:\/\/github\.example\/org\/app\/pull\/\d+/);
    expect(github.pulls.at(-1)).toMatchObject({
      head: 'cli/notes',
      title: 'From the CLI',
      draft: false,
    });
    const refused = await run(bin, ['deliver', task.id, '--branch', 'main'], {
      env: { ...process.env, PATCHBAY_URL: stack.url },
    }).catch((err: { code: number; stderr: string }) => err);
    expect(refused).toMatchObject({ code: 3 });
    expect((refused as { stderr: string }).stderr).toContain('branch_protected');
  }, 180_000);
});
