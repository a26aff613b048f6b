import type { TaskEventBody } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { CodexTranslator, unwrapShell } from './codex-events.js';

function translate(lines: object[]): { events: TaskEventBody[]; translator: CodexTranslator } {
  const events: TaskEventBody[] = [];
  let clock = 1000;
  const translator = new CodexTranslator(
    (e) => events.push(e),
    '/workspace',
    () => (clock += 250),
  );
  for (const line of lines) translator.line(JSON.stringify(line));
  return { events, translator };
}

// Lines as Codex CLI 0.169's `exec --json` printed them in a run against the scripted server.
const RUN = [
  { type: 'thread.started', thread_id: '01a2-thread' },
  { type: 'turn.started' },
  {
    type: 'item.completed',
    item: { id: 'item_0', type: 'error', message: 'Model metadata for `m` not found.' },
  },
  { type: 'item.completed', item: { id: 'item_1', type: 'agent_message', text: 'Looking.' } },
  {
    type: 'item.started',
    item: {
      id: 'item_2',
      type: 'command_execution',
      command: "/bin/bash -lc 'ls -la && echo hi > out.txt'",
      aggregated_output: '',
      exit_code: null,
      status: 'in_progress',
    },
  },
  {
    type: 'item.completed',
    item: {
      id: 'item_2',
      type: 'command_execution',
      command: "/bin/bash -lc 'ls -la && echo hi > out.txt'",
      aggregated_output: 'total 8\n',
      exit_code: 0,
      status: 'completed',
    },
  },
  {
    type: 'item.started',
    item: {
      id: 'item_3',
      type: 'file_change',
      changes: [
        { path: '/workspace/added.txt', kind: 'add' },
        { path: '/workspace/src/a.js', kind: 'update' },
      ],
      status: 'in_progress',
    },
  },
  {
    type: 'item.completed',
    item: {
      id: 'item_3',
      type: 'file_change',
      changes: [
        { path: '/workspace/added.txt', kind: 'add' },
        { path: '/workspace/src/a.js', kind: 'update' },
      ],
      status: 'completed',
    },
  },
  {
    type: 'item.completed',
    item: {
      id: 'item_4',
      type: 'command_execution',
      command: '/bin/bash -lc "printf \'a\\\\n\' > new.txt; exit 3"',
      aggregated_output: '',
      exit_code: 3,
      status: 'failed',
    },
  },
  {
    type: 'item.completed',
    item: {
      id: 'item_5',
      type: 'todo_list',
      items: [
        { text: 'read', completed: true },
        { text: 'edit', completed: false },
        { text: 'test', completed: false },
      ],
    },
  },
  { type: 'item.completed', item: { id: 'item_6', type: 'agent_message', text: 'All done.' } },
  {
    type: 'turn.completed',
    usage: { input_tokens: 29684, cached_input_tokens: 19627, output_tokens: 34 },
  },
];

describe('CodexTranslator', () => {
  it("turns Codex's commands, edits, messages and to-do list into Patchbay events", () => {
    const { events, translator } = translate(RUN);
    expect(events).toEqual([
      { type: 'output', phase: 'agent', text: 'codex: Model metadata for `m` not found.\n' },
      { type: 'assistant_message', text: 'Looking.' },
      {
        type: 'tool_call',
        callId: 'codex_item_2',
        name: 'shell',
        arguments: '{"command":"ls -la && echo hi > out.txt"}',
      },
      {
        type: 'tool_output',
        callId: 'codex_item_2',
        name: 'shell',
        ok: true,
        exitCode: 0,
        durationMs: 250,
        output: 'total 8\n',
      },
      {
        type: 'tool_call',
        callId: 'codex_item_3',
        name: 'apply_patch',
        arguments: JSON.stringify({
          input:
            '*** Begin Patch\n*** Add File: added.txt\n*** Update File: src/a.js\n*** End Patch',
        }),
      },
      {
        type: 'tool_output',
        callId: 'codex_item_3',
        name: 'apply_patch',
        ok: true,
        durationMs: 250,
        output: 'completed',
      },
      // A completion without a start is a whole call.
      {
        type: 'tool_call',
        callId: 'codex_item_4',
        name: 'shell',
        arguments: JSON.stringify({ command: "printf 'a\\n' > new.txt; exit 3" }),
      },
      {
        type: 'tool_output',
        callId: 'codex_item_4',
        name: 'shell',
        ok: false,
        exitCode: 3,
        durationMs: 250,
        output: '',
      },
      {
        type: 'plan',
        steps: [
          { step: 'read', status: 'completed' },
          { step: 'edit', status: 'in_progress' },
          { step: 'test', status: 'pending' },
        ],
      },
      { type: 'assistant_message', text: 'All done.' },
    ]);
    expect(translator.finish()).toEqual({
      summary: 'All done.',
      failure: null,
      toolCalls: 3,
      thread: '01a2-thread',
    });
  });

  it('keeps a failed turn and lines that are not JSON', () => {
    const events: TaskEventBody[] = [];
    const translator = new CodexTranslator((e) => events.push(e));
    translator.line('WARNING: something about PATH aliases');
    translator.line(JSON.stringify({ type: 'error', message: 'Reconnecting... 1/5' }));
    translator.line(
      JSON.stringify({ type: 'turn.failed', error: { message: '429 budget spent' } }),
    );
    expect(events).toEqual([
      { type: 'output', phase: 'agent', text: 'WARNING: something about PATH aliases\n' },
      { type: 'output', phase: 'agent', text: 'codex: Reconnecting... 1/5\n' },
    ]);
    expect(translator.finish().failure).toBe('429 budget spent');
  });
});

describe('unwrapShell', () => {
  it('shows the script Codex ran, not its shell wrapper', () => {
    expect(unwrapShell("/bin/bash -lc 'npm test'")).toBe('npm test');
    expect(unwrapShell("/bin/bash -lc 'echo '\\''quoted'\\'' done'")).toBe("echo 'quoted' done");
    expect(unwrapShell('/bin/bash -lc "printf \'a\\\\n\' > x"')).toBe("printf 'a\\n' > x");
    expect(unwrapShell('rg -n foo')).toBe('rg -n foo');
  });
});
