import { PatchbayError, type TaskEventBody } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import {
  messageText,
  type ConversationItem,
  type MessageItem,
  type TurnRequest,
} from '../model/index.js';
import { COMPACTION_PROMPT } from '../prompts/compaction.js';
import { SYSTEM_PROMPT } from '../prompts/system.js';
import { ScriptedSandbox, type ExecCall } from '../tools/test-support.js';
import { Agent } from './agent.js';
import { allAnswered } from './conversation.js';
import { FakeModel, runInput, shellCall, type FakeStep } from './test-support.js';

/** A sandbox whose repository has no AGENTS.md and whose commands print `out`. */
function sandboxPrinting(out: (call: ExecCall) => string = () => 'ok\n'): ScriptedSandbox {
  return new ScriptedSandbox((call) => (isFind(call) ? { output: '' } : { output: out(call) }));
}

function isFind(call: ExecCall): boolean {
  return Array.isArray(call.command) && call.command[0] === 'find';
}

function userTexts(items: readonly ConversationItem[]): string[] {
  return items
    .filter((i): i is MessageItem => i.type === 'message' && i.role === 'user')
    .map(messageText);
}

function outputsOf(request: TurnRequest | undefined): { call_id: string; output: string }[] {
  return (request?.input ?? []).flatMap((i) => (i.type === 'function_call_output' ? [i] : []));
}

function* forever(step: FakeStep): Generator<FakeStep> {
  for (;;) yield step;
}

describe('Agent', () => {
  it('runs tools until the model answers without one, and reports usage and events', async () => {
    const model = new FakeModel([
      { reasoning: 'look first', text: 'Reading the file.', calls: shellCall('cat a.txt') },
      (request) => ({
        text: `Done: ${outputsOf(request)[0]?.output.includes('hello') ? 'saw hello' : '?'}`,
      }),
    ]);
    const sandbox = sandboxPrinting(() => 'hello\n');
    const input = runInput(sandbox, { model: { name: 'gpt-test', reasoningEffort: 'high' } });
    const outcome = await new Agent({ model, reasoningSummary: 'auto' }).run(input);

    expect(outcome.stopReason).toBe('completed');
    expect(outcome.summary).toBe('Done: saw hello');
    expect(outcome.usage).toEqual({
      inputTokens: 200,
      cachedInputTokens: 0,
      outputTokens: 20,
      reasoningTokens: 0,
      modelCalls: 2,
      toolCalls: 1,
    });
    const [first, second] = model.requests;
    expect(first).toMatchObject({
      instructions: SYSTEM_PROMPT,
      model: 'gpt-test',
      reasoningEffort: 'high',
      reasoningSummary: 'auto',
      cacheKey: 'task-fake',
    });
    expect(first?.tools.map((t) => t.name)).toEqual(['shell', 'apply_patch', 'update_plan']);
    expect(second?.tools).toEqual(first?.tools);
    expect(second?.instructions).toBe(first?.instructions);
    expect(userTexts(first?.input ?? [])).toEqual(['Fix the bug.']);
    // The second request resends the first one's input, the model's output and the tool output.
    expect(second?.input.slice(0, 1)).toEqual(first?.input);
    expect(second?.input.map((i) => i.type)).toEqual([
      'message',
      'reasoning',
      'message',
      'function_call',
      'function_call_output',
    ]);
    expect(outputsOf(second)[0]?.output).toBe(
      'Exit code: 0\nWall time: 0.0 seconds\nOutput:\nhello\n',
    );

    expect(input.events.map((e) => e.type)).toEqual([
      'usage',
      'reasoning',
      'assistant_message',
      'tool_call',
      'tool_output',
      'usage',
      'assistant_message',
    ]);
    expect(input.events[3]).toEqual({
      type: 'tool_call',
      callId: 'call_1',
      name: 'shell',
      arguments: '{"command":"cat a.txt"}',
    });
    expect(input.events[4]).toMatchObject({
      type: 'tool_output',
      callId: 'call_1',
      name: 'shell',
      ok: true,
      exitCode: 0,
      output: 'hello\n',
    });
    expect(outcome.transcript).toMatchObject({
      version: 1,
      model: 'gpt-test',
      instructions: SYSTEM_PROMPT,
      stopReason: 'completed',
    });
    expect(outcome.transcript.items).toEqual([
      ...(second?.input ?? []),
      {
        type: 'message',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'Done: saw hello' }],
      },
    ]);
  });

  it('puts the AGENTS.md files, root first, in a message ahead of the task', async () => {
    const sandbox = new ScriptedSandbox((call) =>
      isFind(call)
        ? {
            output:
              '/workspace/pkg/AGENTS.md\nfind: /workspace/private: Permission denied\n/workspace/AGENTS.md\n',
          }
        : {},
    );
    sandbox.files.set('/workspace/AGENTS.md', Buffer.from('Run tests with `make check`.\n'));
    sandbox.files.set('/workspace/pkg/AGENTS.md', Buffer.from('Use tabs in pkg.\n'));
    const model = new FakeModel([{ text: 'ok' }]);
    const outcome = await new Agent({ model }).run(runInput(sandbox));
    const texts = userTexts(model.requests[0]?.input ?? []);
    expect(texts).toHaveLength(2);
    expect(texts[0]).toBe(
      '# AGENTS.md instructions for /workspace\n\n<INSTRUCTIONS>\nRun tests with `make check`.\n</INSTRUCTIONS>\n\n' +
        '# AGENTS.md instructions for /workspace/pkg\n\n<INSTRUCTIONS>\nUse tabs in pkg.\n</INSTRUCTIONS>',
    );
    expect(texts[1]).toBe('Fix the bug.');
    expect(outcome.transcript.agentsMd).toEqual([
      '/workspace/AGENTS.md',
      '/workspace/pkg/AGENTS.md',
    ]);
    const find = sandbox.calls[0]?.command as string[];
    expect(find.slice(0, 4)).toEqual(['find', '/workspace', '-maxdepth', '8']);
    expect(find).toContain('node_modules');
  });

  it('caps the AGENTS.md content and says what was left out', async () => {
    const sandbox = new ScriptedSandbox((call) =>
      isFind(call) ? { output: '/workspace/AGENTS.md\n/workspace/a/AGENTS.md\n' } : {},
    );
    sandbox.files.set('/workspace/AGENTS.md', Buffer.from('x'.repeat(40 * 1024)));
    sandbox.files.set('/workspace/a/AGENTS.md', Buffer.from('nested'));
    const model = new FakeModel([{ text: 'ok' }]);
    await new Agent({ model }).run(runInput(sandbox));
    const text = userTexts(model.requests[0]?.input ?? [])[0] ?? '';
    expect(text).toContain(
      `${'x'.repeat(32 * 1024)}\n[… truncated: ${8 * 1024} more bytes of this file were left out`,
    );
    expect(text).not.toContain('x'.repeat(32 * 1024 + 1));
    expect(text).not.toContain('nested');
    expect(text).toContain('- /workspace/a/AGENTS.md');
  });

  it('stops at max_turns with every call answered', async () => {
    const model = new FakeModel(forever({ text: 'again', calls: shellCall('true') }));
    const outcome = await new Agent({ model }).run(
      runInput(sandboxPrinting(), { limits: { maxTurns: 3 } }),
    );
    expect(outcome.stopReason).toBe('max_turns');
    expect(model.requests).toHaveLength(3);
    expect(outcome.usage).toMatchObject({ modelCalls: 3, toolCalls: 3 });
    expect(outcome.summary).toBe('again');
    expect(allAnswered(outcome.transcript.items)).toBe(true);
  });

  it('stops at max_tokens, counting input and output of every call', async () => {
    const model = new FakeModel(
      forever({ calls: shellCall('true'), usage: { inputTokens: 400, outputTokens: 100 } }),
    );
    const outcome = await new Agent({ model }).run(
      runInput(sandboxPrinting(), { limits: { maxTokens: 1000 } }),
    );
    expect(outcome.stopReason).toBe('max_tokens');
    expect(model.requests).toHaveLength(2);
    expect(outcome.usage).toMatchObject({ inputTokens: 800, outputTokens: 200 });
    expect(outcome.summary).toBeNull();
    expect(allAnswered(outcome.transcript.items)).toBe(true);
  });

  it('stops at the deadline by aborting the model call in flight', async () => {
    let aborted: unknown;
    const model = new FakeModel([
      (request) => {
        request.signal?.addEventListener('abort', () => {
          aborted = request.signal?.reason;
        });
        return { text: 'too late', delayMs: 10_000 };
      },
    ]);
    const started = Date.now();
    const outcome = await new Agent({ model }).run(
      runInput(sandboxPrinting(), { limits: { deadline: Date.now() + 200 } }),
    );
    expect(outcome.stopReason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(aborted).toBeInstanceOf(Error);
  });

  it('stops at the deadline after a command cut short by it', async () => {
    const sandbox = new ScriptedSandbox(async (call) => {
      if (isFind(call)) return {};
      await new Promise((r) => setTimeout(r, call.options.timeoutMs));
      return { exitCode: null, signal: 'SIGKILL', timedOut: true };
    });
    const model = new FakeModel(forever({ calls: shellCall('sleep 600') }));
    const outcome = await new Agent({ model }).run(
      runInput(sandbox, { limits: { deadline: Date.now() + 300 } }),
    );
    expect(outcome.stopReason).toBe('timeout');
    const exec = sandbox.calls.find((c) => !isFind(c));
    expect(exec?.options.timeoutMs).toBeLessThanOrEqual(300);
    expect(allAnswered(outcome.transcript.items)).toBe(true);
  });

  it('recovers from malformed arguments and an unknown tool', async () => {
    const model = new FakeModel([
      {
        calls: [
          { name: 'shell', arguments: '{"command": "ls"' },
          { name: 'open_file', arguments: { path: 'a' } },
          { name: 'shell', arguments: { command: 42 } },
        ],
      },
      (request) => {
        const outputs = outputsOf(request).map((o) => o.output);
        expect(outputs[0]).toMatch(/not valid JSON/);
        expect(outputs[1]).toMatch(/no tool named "open_file"/);
        expect(outputs[2]).toMatch(/invalid arguments for shell/);
        return { calls: shellCall('ls') };
      },
      { text: 'done' },
    ]);
    const sandbox = sandboxPrinting();
    const input = runInput(sandbox);
    const outcome = await new Agent({ model }).run(input);
    expect(outcome.stopReason).toBe('completed');
    expect(outcome.usage.toolCalls).toBe(4);
    expect(sandbox.calls.filter((c) => !isFind(c))).toHaveLength(1);
    expect(
      input.events.filter((e) => e.type === 'tool_output').map((e) => (e as { ok: boolean }).ok),
    ).toEqual([false, false, false, true]);
  });

  it('answers every parallel call, in order, running them one at a time', async () => {
    const log: string[] = [];
    const sandbox = new ScriptedSandbox(async (call) => {
      if (isFind(call)) return {};
      const name = String(call.command);
      log.push(`start ${name}`);
      await new Promise((r) => setTimeout(r, name === 'slow' ? 50 : 1));
      log.push(`end ${name}`);
      return { output: `${name} done` };
    });
    const model = new FakeModel([
      {
        calls: [
          { name: 'shell', arguments: { command: 'slow' }, id: 'a' },
          {
            name: 'update_plan',
            arguments: { plan: [{ step: 'x', status: 'in_progress' }] },
            id: 'b',
          },
          { name: 'shell', arguments: { command: 'fast' }, id: 'c' },
        ],
      },
      { text: 'done' },
    ]);
    const input = runInput(sandbox);
    await new Agent({ model }).run(input);
    expect(log).toEqual(['start slow', 'end slow', 'start fast', 'end fast']);
    const outputs = outputsOf(model.requests[1]);
    expect(outputs.map((o) => o.call_id)).toEqual(['a', 'b', 'c']);
    expect(outputs[0]?.output).toContain('slow done');
    expect(outputs[1]?.output).toBe('Plan updated');
    expect(input.events.filter((e) => e.type === 'plan')).toEqual([
      { type: 'plan', steps: [{ step: 'x', status: 'in_progress' }] },
    ]);
  });

  it('asks the model to go on when a reply was cut off by the output token cap', async () => {
    const model = new FakeModel([{ incomplete: 'max_output_tokens' }, { text: 'finished' }]);
    const outcome = await new Agent({ model }).run(runInput(sandboxPrinting()));
    expect(outcome).toMatchObject({ stopReason: 'completed', summary: 'finished' });
    expect(userTexts(model.requests[1]?.input ?? []).at(-1)).toMatch(
      /cut off at the output token limit/,
    );
  });

  it('rejects with the model error that retrying did not fix, and logs retries', async () => {
    const model = new FakeModel([
      (request) => {
        request.onEvent?.({
          type: 'retry',
          attempt: 1,
          maxAttempts: 3,
          delayMs: 1500,
          error: { message: 'rate limited', status: 429, code: undefined },
        });
        return { error: new PatchbayError('model_error', 'the model API refused the request') };
      },
    ]);
    const input = runInput(sandboxPrinting());
    await expect(new Agent({ model }).run(input)).rejects.toMatchObject({ code: 'model_error' });
    expect(input.events).toEqual([
      {
        type: 'error',
        code: 'model_error',
        message: 'model call failed (HTTP 429): rate limited; retrying in 1.5 s (attempt 2 of 3)',
      },
    ]);
  });

  it('rejects with an AbortError when cancelled during a model call', async () => {
    const controller = new AbortController();
    const model = new FakeModel([{ text: 'slow', delayMs: 10_000 }]);
    setTimeout(() => controller.abort(new Error('cancelled by user')), 50);
    const err: unknown = await new Agent({ model })
      .run(runInput(sandboxPrinting(), { signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(controller.signal.aborted).toBe(true);
  });

  it('rejects with an AbortError when cancelled during a command, which is killed', async () => {
    const controller = new AbortController();
    let killed = false;
    const sandbox = new ScriptedSandbox(async (call) => {
      if (isFind(call)) return {};
      await new Promise<void>((resolve) =>
        call.options.signal?.addEventListener('abort', () => resolve()),
      );
      killed = true;
      return { exitCode: null, signal: 'SIGKILL', aborted: true };
    });
    const model = new FakeModel([{ calls: shellCall('sleep 1000') }, { text: 'never' }]);
    setTimeout(() => controller.abort(new Error('cancelled by user')), 50);
    const err: unknown = await new Agent({ model })
      .run(runInput(sandbox, { signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'AbortError' });
    expect(killed).toBe(true);
    expect(model.requests).toHaveLength(1);
  });

  it('rejects at once when the signal is already aborted', async () => {
    const model = new FakeModel([]);
    await expect(
      new Agent({ model }).run(runInput(sandboxPrinting(), { signal: AbortSignal.abort() })),
    ).rejects.toMatchObject({ name: 'AbortError' });
    expect(model.requests).toHaveLength(0);
  });
});

describe('Agent compaction', () => {
  /** A model that works forever with big outputs, summarises when asked, and stops at turn `stopAt`. */
  function longTask(stopAt: number, summaryText: string | undefined, reportUsage: boolean) {
    let turn = 0;
    return new FakeModel(
      forever((request) => {
        const last = request.input.at(-1);
        if (last?.type === 'message' && messageText(last) === COMPACTION_PROMPT) {
          return summaryText === undefined
            ? { calls: shellCall('ignored') }
            : { text: summaryText };
        }
        turn += 1;
        if (turn >= stopAt) return { text: 'all done' };
        const approx = Math.ceil(JSON.stringify(request.input).length / 3);
        return {
          reasoning: `step ${turn}`,
          calls: [
            { name: 'shell', arguments: { command: `step ${turn} a` } },
            { name: 'shell', arguments: { command: `step ${turn} b` } },
          ],
          usage: reportUsage ? { inputTokens: approx, outputTokens: 20 } : null,
        };
      }),
    );
  }

  it.each([
    ['reported usage', true],
    ['estimated size when the server reports no usage', false],
  ])(
    'summarises older turns near the context window (%s), keeping pairs and the task',
    async (_, reportUsage) => {
      const model = longTask(30, 'SUMMARY: steps so far', reportUsage);
      const sandbox = sandboxPrinting(() => 'z'.repeat(900));
      const input = runInput(sandbox);
      const outcome = await new Agent({
        model,
        contextWindowTokens: 8000,
        compactKeepRecentTokens: 2000,
      }).run(input);

      expect(outcome).toMatchObject({ stopReason: 'completed', summary: 'all done' });
      const compactions = input.events.filter(
        (e): e is Extract<TaskEventBody, { type: 'compaction' }> => e.type === 'compaction',
      );
      expect(compactions.length).toBeGreaterThan(0);
      expect(outcome.transcript.compactions).toHaveLength(compactions.length);
      for (const request of model.requests) {
        // Every call answered, no stray output, every reasoning item still followed by its call.
        expect(allAnswered(request.input)).toBe(true);
        request.input.forEach((item, i) => {
          if (item.type === 'reasoning') expect(request.input[i + 1]?.type).toBe('function_call');
        });
        expect(userTexts(request.input)[0]).toBe('Fix the bug.');
        expect(request.instructions).toBe(SYSTEM_PROMPT);
        // Nothing grows past the window.
        expect(JSON.stringify(request.input).length / 3).toBeLessThan(8000);
      }
      const afterFirst = model.requests.find((r) =>
        userTexts(r.input).some((t) => t.includes('SUMMARY: steps so far')),
      );
      expect(afterFirst).toBeDefined();
      const texts = userTexts(afterFirst?.input ?? []);
      expect(texts[1]).toMatch(/^The earlier part of this conversation was removed/);
      expect(texts[1]).toContain('SUMMARY: steps so far');
      // Usage counts the summarising calls too.
      expect(outcome.usage.modelCalls).toBe(model.requests.length);
      // The transcript keeps everything, compacted turns included.
      expect(outcome.transcript.items.filter((i) => i.type === 'function_call')).toHaveLength(
        2 * 29,
      );
    },
  );

  it('falls back to a summary of the steps when the model writes none', async () => {
    const model = longTask(12, undefined, true);
    const outcome = await new Agent({
      model,
      contextWindowTokens: 8000,
      compactKeepRecentTokens: 2000,
    }).run(runInput(sandboxPrinting(() => 'y'.repeat(900))));
    expect(outcome.stopReason).toBe('completed');
    const summary = outcome.transcript.items
      .filter((i): i is MessageItem => i.type === 'message' && i.role === 'user')
      .map(messageText)
      .find((t) => t.startsWith('The earlier part'));
    expect(summary).toContain('No written summary is available');
    expect(summary).toContain('Called shell {"command":"step 1 a"}');
  });
});

describe('Agent follow-up turns', () => {
  it('goes on from the conversation an earlier turn left, and hands its own on', async () => {
    const first = await new Agent({
      model: new FakeModel([
        { text: 'Looking.', calls: shellCall('cat a.txt') },
        { text: 'Done one.' },
      ]),
    }).run(runInput(sandboxPrinting()));
    expect(userTexts(first.conversation)).toEqual(['Fix the bug.']);
    expect(first.conversation.at(-1)).toMatchObject({ type: 'message', role: 'assistant' });

    const model = new FakeModel([{ text: 'Done two.' }]);
    // Stored as JSON and read back; junk in it is left out rather than sent.
    const history = [...JSON.parse(JSON.stringify(first.conversation)), { type: 'bogus' }, 7];
    const second = await new Agent({ model }).run({
      ...runInput(sandboxPrinting()),
      prompt: 'Also handle the empty string.',
      history,
    });
    const input = model.requests[0]?.input ?? [];
    expect(userTexts(input)).toEqual(['Fix the bug.', 'Also handle the empty string.']);
    expect(input.slice(0, first.conversation.length)).toEqual(first.conversation);
    expect(input.at(-1)).toMatchObject({ type: 'message', role: 'user' });
    expect(userTexts(second.conversation)).toEqual([
      'Fix the bug.',
      'Also handle the empty string.',
    ]);
    expect(second.summary).toBe('Done two.');
  });

  it('compacts a long history before the first call, keeping the new prompt word for word', async () => {
    const history: ConversationItem[] = [];
    for (let i = 0; i < 12; i++) {
      history.push(
        {
          type: 'message',
          role: 'user',
          content: [{ type: 'input_text', text: `prompt ${i} ${'p'.repeat(2000)}` }],
        },
        {
          type: 'message',
          role: 'assistant',
          content: [{ type: 'output_text', text: `answer ${i} ${'a'.repeat(2000)}` }],
        },
      );
    }
    const model = new FakeModel(
      forever((request) => {
        const last = request.input.at(-1);
        return last?.type === 'message' && messageText(last) === COMPACTION_PROMPT
          ? { text: 'SUMMARY: twelve earlier turns' }
          : { text: 'Done.' };
      }),
    );
    const outcome = await new Agent({
      model,
      contextWindowTokens: 8000,
      compactKeepRecentTokens: 2000,
    }).run({
      ...runInput(sandboxPrinting()),
      prompt: 'The newest request.',
      history,
    });
    expect(outcome.stopReason).toBe('completed');
    const turn = model.requests.at(-1)?.input ?? [];
    const texts = userTexts(turn);
    expect(texts[0]).toContain('SUMMARY: twelve earlier turns');
    expect(texts.at(-1)).toBe('The newest request.');
    expect(JSON.stringify(turn).length / 3).toBeLessThan(8000);
  });
});
