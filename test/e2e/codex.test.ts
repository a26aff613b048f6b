import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Scenario, scenarioScript } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The real Codex CLI (the binary the sandbox image pins) inside the sandbox, reaching the
 * scripted model server only through the worker's model gateway, by a loopback port the worker
 * carries over the exec channel: the sandbox has no network at all.
 */
const run = promisify(execFile);
const UPSTREAM_KEY = 'sk-test-model-key-never-leaks';

/** Codex's own tool: one command per call, as `exec_command` with `cmd`. */
const exec = (cmd: string) => ({ name: 'exec_command', arguments: { cmd } });

/** Calls one per model turn, then a final message. */
const codexSteps =
  (calls: ReturnType<typeof exec>[], summary: string, usage?: { inputTokens: number }): Scenario =>
  (n) => {
    const call = calls[n];
    return call
      ? { text: `Step ${n + 1}.`, calls: [call], ...(usage ? { usage } : {}) }
      : { text: summary };
  };

const EDIT = `apply_patch <<'EOF'
*** Begin Patch
*** Update File: src/greet.js
@@
-export const greet = (name) => \`Hello, \${name}\`;
+export const greet = (name) => \`Hello, \${name}!\`;
*** Add File: notes.txt
+Written by Codex.
*** End Patch
EOF`;

// Looks for the upstream key everywhere a command in the sandbox can: the environment, every
// process's environment and command line, the files of the home, /tmp, /workspace and /etc. The
// key is given to awk in two halves, so that no command line carries it whole.
const FIND = `awk -v a="sk-test-model" -v b="-key-never-leaks"`;
const HUNT =
  `{ env; cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | tr "\\0" "\\n"; } | ${FIND} 'index($0, a b) {n++} END {print n+0}'; ` +
  `find /home /tmp /workspace /etc -type f -size -5M -exec ${FIND} 'index($0, a b) {print FILENAME; nextfile}' {} + 2>/dev/null | wc -l; ` +
  'echo "$PATCHBAY_MODEL_TOKEN" > .gateway-token; ' +
  'tr "\\0" "\\n" < /proc/$PPID/cmdline | grep -o "base_url=\\"[^\\"]*\\"" > .gateway-url; ' +
  'curl -s -m 3 -o /dev/null https://registry.npmjs.org/ ; echo "outside=$?"';

// In a later run: the earlier run's token, against this run's gateway URL.
const REVOKED = String.raw`url=$(tr "\0" "\n" < /proc/$PPID/cmdline | grep -o 'base_url="[^"]*"' | sed 's/^base_url="//; s/"$//'); curl -s -o /dev/null -w "old-token=%{http_code}\n" -H "authorization: Bearer $(cat .gateway-token)" -H "content-type: application/json" -d '{"model":"m","input":"hi","store":false}' "$url/responses"`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    env: { PATCHBAY_EGRESS_DOMAINS: '*.example.org' },
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({
          'README.md': '# App\n',
          'AGENTS.md': 'Keep greetings short.\n',
          'src/greet.js': 'export const greet = (name) => `Hello, ${name}`;\n',
        })),
    },
    script: scenarioScript({
      edit: codexSteps(
        [exec('cat src/greet.js'), exec(EDIT), exec(HUNT), exec('git status --short')],
        'Greetings are excited now.',
      ),
      listed: codexSteps([exec('echo "behind a list" > listed.txt')], 'Wrote it.'),
      more: codexSteps([exec('echo "one more line" >> notes.txt'), exec(REVOKED)], 'Added a line.'),
      // Each answer reports 3000 input tokens: the second one is past a 5000-token budget.
      spend: codexSteps([exec('echo one'), exec('echo two'), exec('echo three')], 'never', {
        inputTokens: 3000,
      }),
    }),
  });
}, 180_000);

afterAll(async () => {
  await stack?.close();
});

async function submit(body: Record<string, unknown>): Promise<string> {
  const { status, body: task } = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    agent: { runtime: 'codex' },
    ...body,
  });
  expect(status).toBe(202);
  return task.id as string;
}

describe('the codex runtime', () => {
  it('edits files with the real Codex CLI in the sandbox, through the gateway, holding no key', async () => {
    const id = await submit({
      prompt: 'SCENARIO:edit make the greeting excited',
      environment: { verify: "grep -qF 'Hello, ${name}!' src/greet.js" },
    });
    const task = await waitForTask(stack, id, {}, 150_000);
    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    expect(task.agent).toEqual({ runtime: 'codex' });
    expect(task.result.verify.passed).toBe(true);
    expect(task.result.summary).toBe('Greetings are excited now.');

    // The patch: Codex's apply_patch, and the files the hunt left (the token and the URL).
    const patch = await (await fetch(`${stack.url}/v1/tasks/${id}/patch`)).text();
    expect(patch).toContain('+export const greet = (name) => `Hello, ${name}!`;');
    expect(patch).toContain('+Written by Codex.');
    expect(task.result.files.map((f: { path: string }) => f.path).sort()).toEqual([
      '.gateway-token',
      '.gateway-url',
      'notes.txt',
      'src/greet.js',
    ]);

    // Patchbay's events show Codex's commands with their exit codes, and its edit.
    const { body: log } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
    const events = log.events as Record<string, any>[];
    const commands = events
      .filter((e) => e.type === 'tool_call' && e.name === 'shell')
      .map((e) => JSON.parse(e.arguments).command);
    expect(commands).toContain('cat src/greet.js');
    expect(commands).toContain('git status --short');
    const outputs = events.filter((e) => e.type === 'tool_output' && e.name === 'shell');
    expect(outputs.find((o) => o.output.includes('export const greet'))?.exitCode).toBe(0);
    const edit = events.find((e) => e.type === 'tool_call' && e.name === 'apply_patch');
    expect(JSON.parse(edit!.arguments).input).toContain('*** Update File: src/greet.js');
    expect(events.some((e) => e.type === 'assistant_message' && e.text === 'Step 1.')).toBe(true);

    // The hunt found the key nowhere, and nothing outside the gateway's network answered.
    const hunt = outputs.find((o) => o.output.includes('outside='))!.output as string;
    const [inProcesses, inFiles] = hunt.trim().split('\n').map(Number);
    expect(inProcesses).toBe(0);
    expect(inFiles).toBe(0);
    expect(hunt).not.toContain('outside=0');
    expect(JSON.stringify(events)).not.toContain(UPSTREAM_KEY);

    // Usage is the gateway's count of what the model server answered for this task.
    const served = stack.model.requests.filter(
      (r) => r.outcome === 'answered' && JSON.stringify(r.body).includes('SCENARIO:edit'),
    );
    expect(task.usage.modelCalls).toBe(served.length);
    expect(task.usage.modelCalls).toBe(5);
    expect(task.usage.inputTokens).toBeGreaterThan(0);
    // Every request reached the model server with the real key, never the task's token.
    for (const request of served)
      expect(request.headers.authorization).toBe(`Bearer ${UPSTREAM_KEY}`);

    // A follow-up: Codex starts afresh, told the earlier request and what it said when done.
    const { status: replied } = await call(stack, 'POST', `/v1/tasks/${id}/messages`, {
      prompt: 'SCENARIO:more and one more line',
    });
    expect(replied).toBe(202);
    const second = await waitForTask(stack, id, {}, 150_000);
    expect(second.status).toBe('succeeded');
    expect(second.turn).toBe(2);
    const asked = stack.model.requests.find((r) =>
      JSON.stringify(r.body).includes('SCENARIO:more and one more line'),
    );
    const body = JSON.stringify(asked!.body);
    expect(body).toContain('Request 1: SCENARIO:edit make the greeting excited');
    expect(body).toContain('What you said when done: Greetings are excited now.');
    const both = await (await fetch(`${stack.url}/v1/tasks/${id}/patch`)).text();
    expect(both).toContain('+Written by Codex.\n+one more line');

    // The first run's token stopped working when its run ended.
    const { body: later } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
    const revoked = (later.events as Record<string, any>[]).find(
      (e) => e.type === 'tool_output' && String(e.output).includes('old-token='),
    );
    expect(revoked?.output).toContain('old-token=401');
    const { stdout } = await run('docker', ['ps', '-q', '--filter', `label=patchbay.task=${id}`]);
    expect(stdout.trim()).toBe('');
  }, 330_000);

  it('reaches the gateway under an allowlist network: its own calls are never proxied', async () => {
    const id = await submit({
      prompt: 'SCENARIO:listed write a file',
      environment: { network: 'allowlist', allowDomains: ['x.example.org'] },
    });
    // Under the test's own timeout, so that a task that does not end fails with its last events.
    const task = await waitForTask(stack, id, {}, 180_000);
    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    const patch = await (await fetch(`${stack.url}/v1/tasks/${id}/patch`)).text();
    expect(patch).toContain('+behind a list');
    const { body: log } = await call(stack, 'GET', `/v1/tasks/${id}/events?limit=1000`);
    const blocked = (log.events as Record<string, any>[]).filter(
      (e) => e.type === 'network.blocked',
    );
    // The gateway is loopback inside: nothing of it went to the proxy, or was refused there. And
    // the CLI's own start-up calls (update check, analytics, plugin sync: github.com,
    // chatgpt.com) are configured off, so no refusal clutters the log.
    expect(blocked).toEqual([]);
    expect(task.usage.modelCalls).toBe(2);
  }, 240_000);

  it('ends a task whose calls spend its token budget with budget_exhausted', async () => {
    const id = await submit({
      prompt: 'SCENARIO:spend count slowly',
      limits: { maxTokens: 5000 },
    });
    const task = await waitForTask(stack, id, {}, 180_000);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('budget_exhausted');
    expect(task.usage.inputTokens).toBeGreaterThanOrEqual(5000);
    // The refused request was never forwarded: two answers of 3000 tokens, no third.
    const served = stack.model.requests.filter(
      (r) => r.outcome === 'answered' && JSON.stringify(r.body).includes('SCENARIO:spend'),
    );
    expect(served).toHaveLength(2);
    expect(task.usage.modelCalls).toBe(2);
  }, 180_000);
});
