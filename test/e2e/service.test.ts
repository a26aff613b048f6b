import { createDockerClient, LABELS } from '@patchbay/sandbox';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { binaryBytes } from '../support/git-server.js';
import { FINGERPRINT, applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, lifecycleOf, startStack, waitForTask } from '../support/stack.js';

const run = promisify(execFile);
const docker = createDockerClient();

const EDIT_ALL_PATCH = `*** Begin Patch
*** Update File: README.md
@@
 # Demo
-Old line.
+New line, edited by the agent.
*** Add File: src/new.txt
+a brand new file
*** End Patch`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) => {
        await repo.commit({
          'README.md': '# Demo\nOld line.\n',
          'old.txt': 'to be deleted\n',
          'rename-me.txt': 'a file that moves\nwith a few lines\nof content\n',
          'run.sh': '#!/bin/sh\necho run\n',
          'src/lib.js': 'export const x = 1;\n',
          'assets/logo.bin': binaryBytes(2048),
        });
      },
    },
    script: scenarioScript({
      'edit-all': steps([
        applyPatch(EDIT_ALL_PATCH),
        shell(
          'rm old.txt && mv rename-me.txt renamed.txt && head -c 5000 /dev/urandom > data.bin && chmod +x run.sh && printf "\\x00\\x01\\x02" >> assets/logo.bin',
        ),
        shell(FINGERPRINT),
      ]),
      'touch-done': steps([shell('echo ok > done.txt')]),
      nothing: steps([]),
      sleep: steps([shell('sleep 300', { timeout_ms: 600_000 })]),
      env: steps([shell('env | sort; cat /proc/1/environ | tr "\\0" "\\n" || true')]),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
});

const submit = (body: Record<string, unknown>) => call(stack, 'POST', '/v1/tasks', body);
const repo = () => stack.git.url('app.git');

async function eventsOf(id: string): Promise<any[]> {
  const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
  return body.events;
}

async function containersOf(taskId: string) {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=${taskId}`] } });
}

describe('a task end to end', () => {
  it('edits, adds, deletes, renames and adds binary files; its patch reproduces the tree on baseCommit', async () => {
    const submitted = await submit({ repo: { url: repo() }, prompt: 'SCENARIO:edit-all' });
    expect(submitted.status).toBe(202);
    expect(submitted.headers.get('location')).toBe(`/v1/tasks/${submitted.body.id}`);
    const task = await waitForTask(stack, submitted.body.id);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.baseCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(task.result.summary).toBe('Done.');
    const byPath = Object.fromEntries(task.result.files.map((f: any) => [f.path, f]));
    expect(byPath['README.md']).toMatchObject({ status: 'modified', additions: 1, deletions: 1 });
    expect(byPath['src/new.txt']).toMatchObject({ status: 'added', additions: 1 });
    expect(byPath['old.txt']).toMatchObject({ status: 'deleted' });
    expect(byPath['renamed.txt']).toMatchObject({ status: 'renamed', oldPath: 'rename-me.txt' });
    expect(byPath['data.bin']).toMatchObject({ status: 'added', binary: true });
    expect(task.usage.modelCalls).toBe(4);
    expect(task.usage.toolCalls).toBe(3);

    // The agent's own view of its tree, as the last tool call printed it.
    const events = await eventsOf(task.id);
    const outputs = events.filter((e) => e.type === 'tool_output');
    const agentTree = (outputs.at(-1).output as string).split('\n').filter((l) => / \.\//.test(l));
    expect(agentTree.length).toBeGreaterThan(5);

    const patch = await fetch(`${stack.url}/v1/tasks/${task.id}/patch`);
    expect(patch.status).toBe(200);
    expect(patch.headers.get('content-type')).toMatch(/^text\/x-diff/);
    const diff = Buffer.from(await patch.arrayBuffer());
    expect(diff.toString('latin1')).toContain('GIT binary patch');

    const dir = await mkdtemp(join(tmpdir(), 'patchbay-apply-'));
    try {
      await run('git', ['clone', '-q', repo(), dir]);
      await run('git', ['-C', dir, 'checkout', '-q', task.baseCommit]);
      await writeFile(join(dir, '..', `${task.id}.diff`), diff);
      await run('git', ['-C', dir, 'apply', '--index', join(dir, '..', `${task.id}.diff`)]);
      const { stdout } = await run('bash', ['-c', FINGERPRINT], { cwd: dir });
      expect(stdout.trim().split('\n')).toEqual(agentTree.map((l) => l.trim()));
    } finally {
      await rm(dir, { recursive: true, force: true });
      await rm(join(dir, '..', `${task.id}.diff`), { force: true });
    }
    expect(await containersOf(task.id)).toEqual([]);
  });

  it('runs verify and reports it passing, or fails the task when it fails', async () => {
    const [passing, failing] = await Promise.all([
      submit({
        repo: { url: repo() },
        prompt: 'SCENARIO:touch-done',
        environment: { verify: 'test -f done.txt && echo verified' },
      }),
      submit({
        repo: { url: repo() },
        prompt: 'SCENARIO:touch-done',
        environment: { verify: 'echo checking; test -f missing.txt' },
      }),
    ]);
    const passed = await waitForTask(stack, passing.body.id);
    expect(passed.status).toBe('succeeded');
    expect(passed.result.verify).toMatchObject({
      exitCode: 0,
      passed: true,
      command: 'test -f done.txt && echo verified',
    });
    expect(passed.result.verify.output).toContain('verified');
    const failed = await waitForTask(stack, failing.body.id);
    expect(failed.status).toBe('failed');
    expect(failed.error).toMatchObject({ code: 'verify_failed', phase: 'publish' });
    expect(failed.result.verify).toMatchObject({ exitCode: 1, passed: false });
    // The worker ended both through the lifecycle owner: one outbox event per status change.
    expect(await lifecycleOf(stack, passed.id)).toEqual([
      'task.queued',
      'task.started',
      'task.succeeded',
    ]);
    expect(await lifecycleOf(stack, failed.id)).toEqual([
      'task.queued',
      'task.started',
      'task.failed',
    ]);
    // The patch is still there for a failed task.
    const patch = await call(stack, 'GET', `/v1/tasks/${failed.id}/patch`);
    expect(patch.status).toBe(200);
    expect(patch.body).toContain('done.txt');
  });

  it('serves an empty patch with 200 when the agent changed nothing', async () => {
    const { body } = await submit({ repo: { url: repo() }, prompt: 'SCENARIO:nothing' });
    const task = await waitForTask(stack, body.id);
    expect(task.status).toBe('succeeded');
    expect(task.result.files).toEqual([]);
    const patch = await fetch(`${stack.url}/v1/tasks/${task.id}/patch`);
    expect(patch.status).toBe(200);
    expect(await patch.text()).toBe('');
  });

  it('fails with setup_failed when setup fails, with its output in the log and secrets masked', async () => {
    const { body } = await submit({
      repo: { url: repo() },
      prompt: 'SCENARIO:nothing',
      environment: {
        setup: 'echo "token is $NPM_TOKEN"; exit 3',
        secrets: { NPM_TOKEN: 'npm-secret-value-123' },
      },
    });
    const task = await waitForTask(stack, body.id);
    expect(task.status).toBe('failed');
    expect(task.error).toMatchObject({ code: 'setup_failed', phase: 'setup' });
    expect(JSON.stringify(task)).not.toContain('npm-secret-value-123');
    const events = await eventsOf(task.id);
    const output = events
      .filter((e) => e.type === 'output')
      .map((e) => e.text)
      .join('');
    expect(output).toContain('token is [secret]');
    expect(JSON.stringify(events)).not.toContain('npm-secret-value-123');
    expect(events.find((e) => e.type === 'command')).toMatchObject({ phase: 'setup', exitCode: 3 });
    expect(await containersOf(task.id)).toEqual([]);
  });

  it('keeps the model key and task secrets out of the agent phase', async () => {
    const { body } = await submit({
      repo: { url: repo() },
      prompt: 'SCENARIO:env',
      environment: {
        setup: 'true',
        secrets: { DEPLOY_TOKEN: 'deploy-secret-456' },
        env: { VISIBLE: 'yes' },
      },
    });
    const task = await waitForTask(stack, body.id);
    expect(task.status).toBe('succeeded');
    const events = await eventsOf(task.id);
    const seen = events.find((e) => e.type === 'tool_output').output as string;
    expect(seen).toContain('VISIBLE=yes');
    expect(seen).not.toContain('deploy-secret-456');
    expect(seen).not.toContain('sk-test-model-key-never-leaks');
  });

  it('fails with clear codes for an unreachable repository and an unknown ref', async () => {
    const [missing, badRef] = await Promise.all([
      submit({ repo: { url: stack.git.url('missing.git') }, prompt: 'SCENARIO:nothing' }),
      submit({ repo: { url: repo(), ref: 'no-such-branch' }, prompt: 'SCENARIO:nothing' }),
    ]);
    expect((await waitForTask(stack, missing.body.id)).error).toMatchObject({
      code: 'repo_unreachable',
      phase: 'fetch',
    });
    expect((await waitForTask(stack, badRef.body.id)).error).toMatchObject({
      code: 'ref_not_found',
      phase: 'fetch',
    });
  });

  it('cancels a running task and removes its container within seconds', async () => {
    const { body } = await submit({ repo: { url: repo() }, prompt: 'SCENARIO:sleep' });
    const deadline = Date.now() + 60_000;
    while (!(await eventsOf(body.id)).some((e) => e.type === 'tool_call')) {
      if (Date.now() > deadline) throw new Error('the agent never started its command');
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const cancelled = await call(stack, 'POST', `/v1/tasks/${body.id}/cancel`);
    expect(cancelled.status).toBe(202);
    const started = Date.now();
    const task = await waitForTask(stack, body.id, {}, 20_000);
    expect(task.status).toBe('cancelled');
    expect(task.error).toMatchObject({ code: 'cancelled', phase: 'agent' });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await containersOf(body.id)).toEqual([]);
    // Idempotent: a second cancel answers with the same final record.
    const again = await call(stack, 'POST', `/v1/tasks/${body.id}/cancel`);
    expect(again.body.status).toBe('cancelled');
  });
});

describe('following the event log', () => {
  async function readSse(id: string, options: { lastEventId?: number; stopAfter?: number } = {}) {
    const controller = new AbortController();
    const res = await fetch(`${stack.url}/v1/tasks/${id}/events`, {
      headers: {
        accept: 'text/event-stream',
        ...(options.lastEventId === undefined
          ? {}
          : { 'last-event-id': String(options.lastEventId) }),
      },
      signal: controller.signal,
    });
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events: any[] = [];
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (\d+)$/m.exec(frame)?.[1];
          const data = /^data: (.*)$/m.exec(frame)?.[1];
          if (id !== undefined && data !== undefined) {
            const event = JSON.parse(data);
            expect(event.seq).toBe(Number(id));
            events.push(event);
            if (options.stopAfter !== undefined && events.length >= options.stopAfter) {
              controller.abort();
              return events;
            }
          }
        }
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    return events;
  }

  it('streams every event exactly once, live from the start and resumed mid-way, then closes', async () => {
    const { body } = await submit({ repo: { url: repo() }, prompt: 'SCENARIO:edit-all' });
    const [live, firstPart] = await Promise.all([
      readSse(body.id),
      readSse(body.id, { stopAfter: 4 }),
    ]);
    const rest = await readSse(body.id, { lastEventId: firstPart.at(-1).seq });
    const all = (await eventsOf(body.id)).map((e) => e.seq);
    expect(all).toEqual(Array.from({ length: all.length }, (_, i) => i + 1));
    expect(live.map((e) => e.seq)).toEqual(all);
    expect([...firstPart, ...rest].map((e) => e.seq)).toEqual(all);
    expect(live.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
    const types = new Set(live.map((e) => e.type));
    for (const type of [
      'status',
      'phase',
      'assistant_message',
      'tool_call',
      'tool_output',
      'usage',
    ])
      expect(types).toContain(type);
  });
});
