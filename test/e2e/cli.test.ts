import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, freePort, startStack, waitForTask } from '../support/stack.js';

const run = promisify(execFile);

// By absolute path: `npx patchbay` would fetch an unrelated npm package of the same name.
const bin = fileURLToPath(new URL('../../node_modules/.bin/patchbay', import.meta.url));

const EDIT = `*** Begin Patch
*** Update File: README.md
@@
 # Demo
-Old line.
+New line, edited by the agent.
*** Add File: notes.txt
+written by the agent
*** End Patch`;

let stack: Stack;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the installed `patchbay` as a user would, against the test stack unless env says not. */
function patchbay(
  args: string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      cwd: options.cwd ?? tmpdir(),
      env: { ...process.env, PATCHBAY_URL: stack.url, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) => {
        await repo.commit({ 'README.md': '# Demo\nOld line.\n', 'src/lib.js': 'x;\n' });
      },
    },
    script: scenarioScript({
      edit: steps(
        [
          {
            name: 'update_plan',
            arguments: {
              plan: [
                { step: 'Edit the README', status: 'in_progress' },
                { step: 'Check the result', status: 'pending' },
              ],
            },
          },
          applyPatch(EDIT),
          shell('cat README.md; exit 3'),
        ],
        'Edited the README and added notes.',
      ),
      sleep: steps([shell('sleep 300', { timeout_ms: 600_000 })]),
      more: steps([shell('echo more >> notes.txt')], 'Added a line to the notes.'),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
});

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  const until = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('condition not met within 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function submitted(prompt: string): Promise<string> {
  const { body } = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt,
  });
  return body.id as string;
}

describe('the patchbay CLI against the running service', () => {
  let taskId: string;

  it('submits with --follow, renders the log and exits 0 when the task succeeds', async () => {
    const result = await patchbay([
      'submit',
      stack.git.url('app.git'),
      'SCENARIO:edit',
      '--verify',
      'grep -q "New line" README.md',
      '--follow',
    ]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    taskId = /^submitted (\S+)$/m.exec(out)![1]!;
    // Not a terminal: plain lines, no colours or progress redraws.
    expect(out).not.toContain('\u001b[');
    expect(out).toMatch(/▸ fetch\n[\s\S]*▸ agent\n[\s\S]*▸ verify/);
    expect(out).toContain('plan');
    expect(out).toContain('  [~] Edit the README');
    expect(out).toContain('  [ ] Check the result');
    expect(out).toContain('apply_patch: update README.md, add notes.txt');
    expect(out).toContain('$ cat README.md; exit 3');
    expect(out).toMatch(/↳ shell exit 3 /);
    expect(out).toContain('assistant: Edited the README and added notes.');
    expect(out).toMatch(/\[verify\] \$ grep -q "New line" README.md {2}exit 0/);
    expect(out).toContain('● succeeded');
    expect(out).toMatch(/verify {3}passed/);
  });

  it('replies to the ended task with --follow: only the new turn is shown; status lists the turns', async () => {
    const result = await patchbay(['reply', taskId, 'SCENARIO:more please', '--follow']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const out = result.stdout;
    expect(out).toContain(`${taskId}: turn 2 queued`);
    expect(out).toContain('━━ turn 2: SCENARIO:more please');
    // Turn 1's log is not repeated, and the kept-sandbox-less turn rebuilds (fetch, setup-less).
    expect(out).not.toContain('apply_patch: update README.md');
    expect(out).toContain('$ echo more >> notes.txt');
    expect(out).toContain('assistant: Added a line to the notes.');
    expect(out.match(/● succeeded/g)).toHaveLength(1);

    const status = await patchbay(['status', taskId]);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(
      /turns\n {4}1\. succeeded .*SCENARIO:edit\n {4}2\. succeeded cold 1 files \+1 -0 .*SCENARIO:more please/,
    );

    // A running task cannot take one: exit 3 with the server's 409.
    const running = await submitted('SCENARIO:sleep');
    await waitUntil(
      async () => (await call(stack, 'GET', `/v1/tasks/${running}`)).body.status === 'running',
    );
    const refused = await patchbay(['reply', running, 'more']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/409.*conflict/);
    await call(stack, 'POST', `/v1/tasks/${running}/cancel`);
  });

  it('waits silently with submit --follow --json and prints the final record', async () => {
    const result = await patchbay([
      '--json',
      'submit',
      stack.git.url('app.git'),
      'SCENARIO:edit',
      '-f',
    ]);
    expect(result.code).toBe(0);
    const task = JSON.parse(result.stdout);
    expect(task).toMatchObject({
      status: 'succeeded',
      prompt: 'SCENARIO:edit',
      origin: { kind: 'cli' },
    });
    expect(task.result.files.map((f: { path: string }) => f.path).sort()).toEqual([
      'README.md',
      'notes.txt',
    ]);
  });

  it('prints the task with status --json and finds it with list --json --status', async () => {
    const status = await patchbay(['status', taskId, '--json']);
    expect(status.code).toBe(0);
    const task = JSON.parse(status.stdout);
    expect(task).toMatchObject({ id: taskId, status: 'succeeded' });
    expect(task.baseCommit).toMatch(/^[0-9a-f]{40}$/);

    const human = await patchbay(['status', taskId]);
    expect(human.stdout).toContain(`${taskId}  succeeded`);
    expect(human.stdout).toContain(`base     ${task.baseCommit}`);

    const listed = await patchbay(['list', '--json', '--status', 'succeeded']);
    expect(listed.code).toBe(0);
    expect(JSON.parse(listed.stdout).tasks.map((t: { id: string }) => t.id)).toContain(taskId);
    const none = await patchbay(['list', '--status', 'queued']);
    expect(none.stdout).toBe('no tasks\n');
  });

  it('shows the finished log, readable or as JSON lines', async () => {
    const logs = await patchbay(['logs', taskId]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('assistant: Edited the README and added notes.');
    expect(logs.stdout.trim().split('\n').at(-1)).toBe('● succeeded');
    const json = await patchbay(['logs', taskId, '--json']);
    const events = json.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.map((e: { seq: number }) => e.seq)).toEqual(
      events.map((_: unknown, i: number) => i + 1),
    );
    const followed = await patchbay(['logs', taskId, '--follow']);
    expect(followed.code).toBe(0);
    expect(followed.stdout).toBe(logs.stdout);
  });

  it('writes the patch with -o and applies it with --apply onto a clean clone at baseCommit', async () => {
    const task = JSON.parse((await patchbay(['status', taskId, '--json'])).stdout);
    const dir = await mkdtemp(join(tmpdir(), 'patchbay-cli-apply-'));
    try {
      const file = join(dir, 'task.diff');
      const written = await patchbay(['patch', taskId, '-o', file]);
      expect(written.code).toBe(0);
      expect(await readFile(file, 'utf8')).toContain('+New line, edited by the agent.');

      const clone = join(dir, 'repo');
      await run('git', ['clone', '-q', stack.git.url('app.git'), clone]);

      // Wrong commit: refused, and the message says what to do.
      await run('git', [
        '-C',
        clone,
        '-c',
        'user.name=t',
        '-c',
        'user.email=t@t',
        'commit',
        '-q',
        '--allow-empty',
        '-m',
        'later',
      ]);
      const wrongHead = await patchbay(['patch', taskId, '--apply'], { cwd: clone });
      expect(wrongHead.code).toBe(1);
      expect(wrongHead.stderr).toContain(`but the patch is against ${task.baseCommit}`);
      expect(wrongHead.stderr).toContain(`git checkout ${task.baseCommit}`);

      await run('git', ['-C', clone, 'checkout', '-q', task.baseCommit]);
      // Dirty tree: refused, naming the file.
      await writeFile(join(clone, 'scratch.txt'), 'mine\n');
      const dirty = await patchbay(['patch', taskId, '--apply'], { cwd: clone });
      expect(dirty.code).toBe(1);
      expect(dirty.stderr).toContain('has changes; commit or stash them first');
      expect(dirty.stderr).toContain('?? scratch.txt');
      await rm(join(clone, 'scratch.txt'));

      // Not a repository at all.
      const nowhere = await patchbay(['patch', taskId, '--apply'], { cwd: dir });
      expect(nowhere.code).toBe(1);
      expect(nowhere.stderr).toContain('is not inside a git work tree');

      // From a subdirectory of the clean checkout at baseCommit: applied at the top, staged.
      const applied = await patchbay(['patch', taskId, '--apply'], { cwd: join(clone, 'src') });
      expect(applied.stderr).toBe('');
      expect(applied.code).toBe(0);
      expect(await readFile(join(clone, 'README.md'), 'utf8')).toBe(
        '# Demo\nNew line, edited by the agent.\n',
      );
      const { stdout } = await run('git', ['-C', clone, 'diff', '--cached', '--name-status']);
      expect(stdout.trim().split('\n').sort()).toEqual(['A\tnotes.txt', 'M\tREADME.md']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('cancels a running task; following it then exits 1', async () => {
    const id = await submitted('SCENARIO:sleep');
    const deadline = Date.now() + 60_000;
    while ((await call(stack, 'GET', `/v1/tasks/${id}`)).body.phase !== 'agent') {
      if (Date.now() > deadline) throw new Error('task never reached the agent phase');
      await new Promise((r) => setTimeout(r, 200));
    }
    const cancelled = await patchbay(['cancel', id]);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(
      new RegExp(`^${id}: (running \\(cancel requested\\)|cancelled)\\n$`),
    );
    const ended = await waitForTask(stack, id);
    expect(ended.status).toBe('cancelled');
    const followed = await patchbay(['logs', id, '--follow']);
    expect(followed.code).toBe(1);
    expect(followed.stdout).toContain('● cancelled');
    expect((await patchbay(['status', id])).code).toBe(1);
  });

  it('exits 3 when the server is unreachable or answers an error, 2 on bad usage', async () => {
    const port = await freePort();
    const unreachable = await patchbay(['list'], {
      env: { PATCHBAY_URL: `http://127.0.0.1:${port}` },
    });
    expect(unreachable.code).toBe(3);
    expect(unreachable.stderr).toMatch(
      /^patchbay: cannot reach http:\/\/127\.0\.0\.1:\d+: ECONNREFUSED\n$/,
    );

    const missing = await patchbay(['status', 'no-such-task']);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain('404 not_found');

    const refused = await patchbay(['submit', 'file:///etc', 'do it']);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toContain('422 repo_url_refused');

    expect((await patchbay(['submit'])).code).toBe(2);
    expect((await patchbay(['list', '--status', 'bogus'])).code).toBe(2);
  });

  it('adds, lists, pauses and removes a schedule', async () => {
    const added = await patchbay([
      'schedule',
      'add',
      stack.git.url('app.git'),
      'Weekly check. SCENARIO:edit',
      '--cron',
      '0 9 * * 1',
      '--tz',
      'Europe/Paris',
      '--verify',
      'true',
    ]);
    expect(added.code, added.stderr).toBe(0);
    const id = added.stdout.split(/\s/, 1)[0]!;
    expect(added.stdout).toMatch(/^[0-9a-f-]{36} {2}0 9 \* \* 1 \(Europe\/Paris\), next 20\d\d-/);
    const listed = await patchbay(['--json', 'schedule', 'list']);
    const { schedules } = JSON.parse(listed.stdout);
    expect(schedules.find((s: any) => s.id === id)).toMatchObject({
      cron: '0 9 * * 1',
      timezone: 'Europe/Paris',
      spec: { prompt: 'Weekly check. SCENARIO:edit', environment: { verify: 'true' } },
    });
    expect((await patchbay(['schedule', 'pause', id])).stdout).toBe(`${id}  paused\n`);
    expect((await patchbay(['schedule', 'runs', id])).stdout).toBe('no runs yet\n');
    expect((await patchbay(['schedule', 'rm', id])).stdout).toBe(`deleted ${id}\n`);
    const gone = await patchbay(['schedule', 'runs', id]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toContain('404 not_found');
    expect((await patchbay(['schedule', 'add', 'x', 'y'])).code).toBe(2);
  });
});
