// The agent loop end to end: the real `openai` SDK against the scripted model server, on a real
// Docker sandbox. One sandbox serves the whole file; each test starts from a fresh workspace.

import type { TaskEventBody } from '@patchbay/core';
import type { DockerSandboxProvider, Sandbox } from '@patchbay/sandbox';
import { TEST_IMAGE, testProvider } from '@patchbay/sandbox/testing';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createModelClient, type ModelWire } from '../model/index.js';
import { COMPACTION_PROMPT } from '../prompts/compaction.js';
import { SYSTEM_PROMPT } from '../prompts/system.js';
import {
  startScriptedModelServer,
  type ScriptRequest,
  type ScriptStep,
  type ScriptedModelServer,
  type ScriptedModelServerOptions,
} from '../testing/index.js';
import { applyPatchTool } from '../tools/apply-patch.js';
import { Agent } from './agent.js';
import type { AgentOptions } from './options.js';
import type { AgentRunInput } from './types.js';

let provider: DockerSandboxProvider;
let sandbox: Sandbox;
const servers: ScriptedModelServer[] = [];

beforeAll(async () => {
  provider = testProvider();
  sandbox = await provider.create({ image: TEST_IMAGE, taskId: 'agent-integration' });
});

afterAll(async () => {
  await sandbox?.destroy();
  await provider?.close();
});

beforeEach(async () => {
  // A fresh repository for every test: the fixture below, committed, with a clean status.
  const reset = await sandbox.exec(
    `find /workspace -mindepth 1 -delete && cd /workspace && git init -q && mkdir -p pkg && \
     printf 'def add(a, b):\\n    return a - b\\n' > calc.py && \
     printf 'from calc import add\\n\\nassert add(2, 3) == 5, "add(2, 3) should be 5"\\nprint("all tests passed")\\n' > test_calc.py && \
     printf 'Run the tests with: python3 -B test_calc.py\\n' > AGENTS.md && \
     printf 'Code in pkg/ uses tabs.\\n' > pkg/AGENTS.md && \
     git add -A && git commit -qm init`,
  );
  expect(reset.exitCode, reset.output.toString()).toBe(0);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(
  script: Iterable<ScriptStep>,
  options: Omit<ScriptedModelServerOptions, 'script'> = {},
): Promise<ScriptedModelServer> {
  const server = await startScriptedModelServer({ script, ...options });
  servers.push(server);
  return server;
}

function agentFor(
  server: ScriptedModelServer,
  wire: ModelWire = 'responses',
  options: Partial<AgentOptions> = {},
): Agent {
  const model = createModelClient({
    model: 'scripted-model',
    baseURL: server.url,
    wire,
    retry: { initialDelayMs: 10, maxDelayMs: 50 },
    streamIdleTimeoutMs: 30_000,
  });
  return new Agent({ model, ...options });
}

function input(
  overrides: Partial<Omit<AgentRunInput, 'limits'>> & {
    limits?: Partial<AgentRunInput['limits']>;
  } = {},
) {
  const events: TaskEventBody[] = [];
  const { limits, ...rest } = overrides;
  return {
    sandbox,
    prompt: 'Fix add() in calc.py so the tests pass.',
    model: { name: 'scripted-model', reasoningEffort: null },
    signal: new AbortController().signal,
    emit: (event: TaskEventBody) => events.push(event),
    ...rest,
    limits: { maxTurns: 30, maxTokens: 1_000_000, deadline: Date.now() + 50_000, ...limits },
    events,
  };
}

async function workspaceFile(path: string): Promise<string> {
  return (await sandbox.readFile(`/workspace/${path}`)).toString('utf8');
}

const FIX = `*** Begin Patch
*** Update File: calc.py
@@ def add(a, b):
-    return a - b
+    return a + b
*** End Patch`;

/** The multi-turn task, checking at each step what the model was sent. */
function fixTheBug(): ScriptStep[] {
  return [
    (req) => {
      // The instructions are Patchbay's; AGENTS.md (root first) comes ahead of the task.
      expect(req.instructions).toBe(SYSTEM_PROMPT);
      const users = req.items.filter((i) => i.type === 'message' && i.role === 'user');
      expect(users).toHaveLength(2);
      const agentsMd = users[0]?.type === 'message' ? users[0].text : '';
      expect(agentsMd).toContain(
        '# AGENTS.md instructions for /workspace\n\n<INSTRUCTIONS>\nRun the tests with: python3 -B test_calc.py\n</INSTRUCTIONS>',
      );
      expect(agentsMd.indexOf('python3 -B test_calc.py')).toBeLessThan(
        agentsMd.indexOf('Code in pkg/ uses tabs.'),
      );
      expect(req.lastUserText).toBe('Fix add() in calc.py so the tests pass.');
      expect(req.toolNames).toEqual(['shell', 'apply_patch', 'update_plan']);
      return {
        reasoning: 'Look at the code and the tests first.',
        text: 'I will read the code.',
        calls: [
          {
            name: 'update_plan',
            arguments: {
              plan: [
                { step: 'Read calc.py', status: 'in_progress' },
                { step: 'Fix add()', status: 'pending' },
                { step: 'Run the tests', status: 'pending' },
              ],
            },
          },
          { name: 'shell', arguments: { command: ['cat', 'calc.py'] } },
        ],
      };
    },
    (req) => {
      expect(req.toolOutputs.map((o) => o.name)).toEqual(['update_plan', 'shell']);
      expect(req.lastToolOutput).toContain('return a - b');
      return { calls: [{ name: 'shell', arguments: { command: 'python3 -B test_calc.py' } }] };
    },
    (req) => {
      expect(req.lastToolOutput).toMatch(/^Exit code: 1\n/);
      expect(req.lastToolOutput).toContain('AssertionError: add(2, 3) should be 5');
      return { calls: [{ name: 'apply_patch', arguments: { input: FIX } }] };
    },
    (req) => {
      expect(req.lastToolOutput).toContain('Success. Updated the following files:\nM calc.py');
      return {
        calls: [
          {
            name: 'shell',
            arguments: { command: 'python3 -B test_calc.py', workdir: '/workspace' },
          },
        ],
      };
    },
    (req) => {
      expect(req.lastToolOutput).toMatch(/^Exit code: 0\n/);
      expect(req.lastToolOutput).toContain('all tests passed');
      // The Codex habit: apply_patch run through shell, with a heredoc and a cd.
      return {
        calls: [
          {
            name: 'shell',
            arguments: {
              command: [
                'bash',
                '-lc',
                `cd pkg && apply_patch <<'EOF'\n*** Begin Patch\n*** Add File: NOTES.md\n+add() adds.\n*** End Patch\nEOF`,
              ],
            },
          },
        ],
      };
    },
    (req) => {
      expect(req.lastToolOutput).toContain('A NOTES.md');
      return { text: 'Fixed add() to return a + b; python3 -B test_calc.py passes.' };
    },
  ];
}

describe.each<ModelWire>(['responses', 'chat'])('the agent over the %s wire', (wire) => {
  it('reads files, runs the tests, patches a failure and finishes', async () => {
    const server = await serve(fixTheBug());
    const run = input();
    const outcome = await agentFor(server, wire).run(run);
    server.assertNoViolations();

    expect(outcome.stopReason).toBe('completed');
    expect(outcome.summary).toBe('Fixed add() to return a + b; python3 -B test_calc.py passes.');
    expect(await workspaceFile('calc.py')).toBe('def add(a, b):\n    return a + b\n');
    expect(await workspaceFile('pkg/NOTES.md')).toBe('add() adds.\n');
    expect(outcome.usage).toMatchObject({ modelCalls: 6, toolCalls: 6 });
    expect(outcome.usage.inputTokens).toBeGreaterThan(0);
    expect(outcome.transcript.agentsMd).toEqual([
      '/workspace/AGENTS.md',
      '/workspace/pkg/AGENTS.md',
    ]);

    const types = run.events.map((e) => e.type);
    expect(types.filter((t) => t === 'usage')).toHaveLength(6);
    expect(types.filter((t) => t === 'tool_output')).toHaveLength(6);
    expect(run.events).toContainEqual({
      type: 'plan',
      steps: [
        { step: 'Read calc.py', status: 'in_progress' },
        { step: 'Fix add()', status: 'pending' },
        { step: 'Run the tests', status: 'pending' },
      ],
    });
    expect(run.events).toContainEqual(
      expect.objectContaining({ type: 'tool_output', name: 'shell', ok: false, exitCode: 1 }),
    );
    if (wire === 'responses') expect(types).toContain('reasoning');
  });
});

describe('apply_patch in a real sandbox', () => {
  it('refuses to write through symbolic links that lead out of /workspace, and keeps file modes', async () => {
    const setup = await sandbox.exec(
      'cd /workspace && ln -s /tmp tmplink && ln -s /tmp/absent.txt dangling && printf "#!/bin/sh\\necho a\\n" > run.sh && chmod 755 run.sh',
    );
    expect(setup.exitCode, setup.output.toString()).toBe(0);
    const context = {
      sandbox,
      workspace: '/workspace',
      signal: new AbortController().signal,
      deadline: Date.now() + 30_000,
      limits: {
        defaultCommandTimeoutMs: 10_000,
        maxCommandTimeoutMs: 10_000,
        modelOutputBytes: 1024,
        eventOutputBytes: 4096,
      },
      emit: () => undefined,
    };
    for (const target of ['tmplink/evil.txt', 'dangling']) {
      const result = await applyPatchTool.run(
        { input: `*** Begin Patch\n*** Add File: ${target}\n+evil\n*** End Patch` },
        context,
      );
      expect(result.ok, target).toBe(false);
      expect(result.output).toContain('leads outside the working directory');
    }
    const outside = await sandbox.exec(['ls', '/tmp']);
    expect(outside.output.toString()).not.toMatch(/evil|absent/);

    const update = await applyPatchTool.run(
      { input: '*** Begin Patch\n*** Update File: run.sh\n@@\n-echo a\n+echo b\n*** End Patch' },
      context,
    );
    expect(update.ok, update.output).toBe(true);
    const mode = await sandbox.exec(['stat', '-c', '%a %U', '/workspace/run.sh']);
    expect(mode.output.toString().trim()).toBe('755 agent');
    expect(await workspaceFile('run.sh')).toBe('#!/bin/sh\necho b\n');
  });
});

describe('the agent against a misbehaving model or server', () => {
  it('recovers from malformed arguments and an unknown tool', async () => {
    const server = await serve([
      {
        calls: [
          { name: 'shell', arguments: '{"command": ["ls"' },
          { name: 'read_file', arguments: { path: 'calc.py' } },
        ],
      },
      (req) => {
        expect(req.toolOutputs[0]?.output).toMatch(
          /^Error: the arguments of shell are not valid JSON/,
        );
        expect(req.toolOutputs[1]?.output).toMatch(/^Error: there is no tool named "read_file"/);
        return { calls: [{ name: 'shell', arguments: { command: ['ls'] } }] };
      },
      (req) => {
        expect(req.lastToolOutput).toContain('calc.py');
        return { text: 'done' };
      },
    ]);
    const outcome = await agentFor(server).run(input());
    server.assertNoViolations();
    expect(outcome.stopReason).toBe('completed');
  });

  it('retries a 429 and then succeeds', async () => {
    const server = await serve([
      {
        text: 'done after a rate limit',
        faults: [{ type: 'status', status: 429, retryAfterMs: 20 }],
      },
    ]);
    const run = input();
    const outcome = await agentFor(server).run(run);
    server.assertNoViolations();
    expect(outcome).toMatchObject({ stopReason: 'completed', summary: 'done after a rate limit' });
    expect(server.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(run.events).toContainEqual(
      expect.objectContaining({
        type: 'error',
        code: 'model_error',
        message: expect.stringContaining('HTTP 429') as unknown,
      }),
    );
  });

  it('retries a stream cut mid-way', async () => {
    const server = await serve([
      {
        calls: [{ name: 'shell', arguments: { command: 'echo hi' } }],
        faults: [{ type: 'cut', afterEvents: 3 }],
      },
      { text: 'done after a cut' },
    ]);
    const outcome = await agentFor(server).run(input());
    server.assertNoViolations();
    expect(outcome).toMatchObject({ stopReason: 'completed', summary: 'done after a cut' });
    expect(server.requests.map((r) => r.outcome)).toEqual(['fault', 'answered', 'answered']);
    expect(outcome.usage.toolCalls).toBe(1);
  });
});

describe('the agent cancelled', () => {
  it('aborts the model call in flight', async () => {
    const server = await serve([{ text: 'too slow', delayMs: 20_000 }]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error('cancelled')), 500);
    const started = Date.now();
    const err: unknown = await agentFor(server)
      .run(input({ signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(5000);
    await expect.poll(() => server.requests[0]?.outcome).toBe('client_closed');
  });

  it('kills the command in flight', async () => {
    const server = await serve([
      { calls: [{ name: 'shell', arguments: { command: 'sleep 300 && echo never' } }] },
    ]);
    const controller = new AbortController();
    const started = Date.now();
    const run = input({
      signal: controller.signal,
      emit: (event) => {
        if (event.type === 'tool_call')
          setTimeout(() => controller.abort(new Error('cancelled')), 500);
      },
    });
    const err: unknown = await agentFor(server)
      .run(run)
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(Date.now() - started).toBeLessThan(10_000);
    const ps = await sandbox.exec(['pgrep', '-f', 'sleep 300']);
    expect(ps.exitCode).toBe(1);
  });
});

describe('the agent within its budgets', () => {
  it('shows the model a long output cut to head and tail, with the omitted size', async () => {
    // seq 1 100000 prints 588895 bytes.
    const server = await serve([
      { calls: [{ name: 'shell', arguments: { command: ['seq', '1', '100000'] } }] },
      (req: ScriptRequest) => {
        const out = req.lastToolOutput ?? '';
        expect(out).toContain('Total output: 588895 bytes\n');
        expect(out).toMatch(/\n\[… \d+ bytes of 588895 omitted …\]\n/);
        expect(out).toContain('Output:\n1\n2\n3\n');
        expect(out.endsWith('99999\n100000\n')).toBe(true);
        expect(Buffer.byteLength(out)).toBeLessThan(11 * 1024);
        return { text: 'seen' };
      },
    ]);
    const run = input();
    const outcome = await agentFor(server).run(run);
    server.assertNoViolations();
    expect(outcome.stopReason).toBe('completed');
    const event = run.events.find((e) => e.type === 'tool_output');
    expect(event).toMatchObject({ ok: true, exitCode: 0 });
    const dropped = (event as { droppedBytes?: number }).droppedBytes ?? 0;
    expect(dropped).toBeGreaterThan(500_000);
    expect(Buffer.byteLength((event as { output: string }).output) + dropped).toBeLessThan(
      588895 + 200,
    );
  });

  function* endless(): Generator<ScriptStep> {
    for (let i = 0; ; i++)
      yield {
        text: `step ${i}`,
        calls: [{ name: 'shell', arguments: { command: `echo ${i}` } }],
        usage: { inputTokens: 1000, outputTokens: 50 },
      };
  }

  it('stops at max_turns', async () => {
    const server = await serve(endless());
    const outcome = await agentFor(server).run(input({ limits: { maxTurns: 3 } }));
    server.assertNoViolations();
    expect(outcome).toMatchObject({
      stopReason: 'max_turns',
      summary: 'step 2',
      usage: { modelCalls: 3, toolCalls: 3 },
    });
  });

  it('stops at max_tokens', async () => {
    const server = await serve(endless());
    const outcome = await agentFor(server).run(input({ limits: { maxTokens: 2500 } }));
    server.assertNoViolations();
    expect(outcome).toMatchObject({
      stopReason: 'max_tokens',
      usage: { modelCalls: 3, inputTokens: 3000, outputTokens: 150 },
    });
  });

  it('stops at the deadline, cutting a command short', async () => {
    const server = await serve([
      { calls: [{ name: 'shell', arguments: { command: 'sleep 60' } }] },
      { text: 'never' },
    ]);
    const started = Date.now();
    const run = input({ limits: { deadline: Date.now() + 3000 } });
    const outcome = await agentFor(server).run(run);
    server.assertNoViolations();
    expect(outcome.stopReason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(8000);
    expect(run.events).toContainEqual(
      expect.objectContaining({ type: 'tool_output', exitCode: null }),
    );
  });

  it('compacts older turns on a long script and carries on', async () => {
    let turn = 0;
    function* long(): Generator<ScriptStep> {
      for (;;) {
        yield (req: ScriptRequest) => {
          if (req.lastUserText === COMPACTION_PROMPT)
            return { text: 'SUMMARY: printed many numbers.' };
          turn += 1;
          if (turn > 12) return { text: 'finished' };
          return { calls: [{ name: 'shell', arguments: { command: ['seq', '1', '2000'] } }] };
        };
      }
    }
    // Compaction rewrites the conversation: the server's append-only check does not apply.
    const server = await serve(long(), { appendOnly: false });
    const run = input();
    const outcome = await agentFor(server, 'responses', {
      contextWindowTokens: 12_000,
      compactKeepRecentTokens: 3000,
    }).run(run);
    server.assertNoViolations();
    expect(outcome).toMatchObject({ stopReason: 'completed', summary: 'finished' });
    expect(run.events.filter((e) => e.type === 'compaction').length).toBeGreaterThan(0);
    const after = server.requests.at(-1)?.body as { input: { role?: string; content?: unknown }[] };
    expect(JSON.stringify(after.input)).toContain('SUMMARY: printed many numbers.');
    expect(JSON.stringify(after.input)).toContain('Fix add() in calc.py so the tests pass.');
  });
});
