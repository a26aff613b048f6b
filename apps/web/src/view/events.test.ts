import type { TaskEvent, TaskEventBody } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { EMPTY_LOG, commandOf, editOf, foldEvents } from './events.js';

let seq = 0;
const ev = (body: TaskEventBody): TaskEvent => ({
  ...body,
  seq: ++seq,
  time: '2026-11-29T10:00:00.000Z',
});

describe('foldEvents', () => {
  it('makes a shell call and its output one command, pending until the output comes', () => {
    seq = 0;
    const call = ev({
      type: 'tool_call',
      callId: 'c1',
      name: 'shell',
      arguments: '{"command":["ls","-la"]}',
    });
    const started = foldEvents(EMPTY_LOG, [call]);
    expect(started.items).toMatchObject([
      { kind: 'command', phase: 'agent', command: 'ls -la', pending: true, exitCode: null },
    ]);
    const done = foldEvents(started, [
      ev({
        type: 'tool_output',
        callId: 'c1',
        name: 'shell',
        ok: false,
        exitCode: 2,
        durationMs: 40,
        output: 'no such file',
      }),
    ]);
    expect(done.items).toHaveLength(1);
    expect(done.items[0]).toMatchObject({
      kind: 'command',
      command: 'ls -la',
      pending: false,
      exitCode: 2,
      durationMs: 40,
      output: 'no such file',
    });
    // The log it grew from is left as it was.
    expect(started.items[0]).toMatchObject({ pending: true });
  });

  it("joins a script's streamed output and its closing command event", () => {
    seq = 0;
    const log = foldEvents(EMPTY_LOG, [
      ev({ type: 'phase', phase: 'setup' }),
      ev({ type: 'output', phase: 'setup', text: 'added 12 packages\n' }),
      ev({ type: 'output', phase: 'setup', text: 'done\n' }),
      ev({ type: 'command', phase: 'setup', command: 'npm ci', exitCode: 0, durationMs: 1500 }),
      ev({ type: 'phase', phase: 'verify' }),
      // A command without streamed output still is one entry.
      ev({ type: 'command', phase: 'verify', command: 'true', exitCode: 0, durationMs: 3 }),
    ]);
    expect(log.items.map((i) => i.kind)).toEqual(['phase', 'command', 'phase', 'command']);
    expect(log.items[1]).toMatchObject({
      phase: 'setup',
      command: 'npm ci',
      output: 'added 12 packages\ndone\n',
      exitCode: 0,
      pending: false,
    });
    expect(log.items[3]).toMatchObject({ phase: 'verify', command: 'true', output: '' });
    expect(log.open).toEqual({});
  });

  it('drops events it has folded already (a resumed stream, a page that read the log first)', () => {
    seq = 0;
    const events = [
      ev({ type: 'status', status: 'running' }),
      ev({ type: 'assistant_message', text: 'Looking.' }),
      ev({ type: 'assistant_message', text: 'Done.' }),
    ];
    const first = foldEvents(EMPTY_LOG, events.slice(0, 2));
    const again = foldEvents(first, events);
    expect(again.items.map((i) => i.key)).toEqual(['1', '2', '3']);
    expect(again.lastSeq).toBe(3);
    expect(foldEvents(again, events)).toMatchObject({ items: again.items, lastSeq: 3 });
  });

  it('shows an apply_patch call as the files it edits, and keeps the latest plan and the token totals', () => {
    seq = 0;
    const patch =
      '*** Begin Patch\n*** Update File: src/a.js\n@@\n-a\n+b\n*** Add File: b.txt\n+x\n*** End Patch';
    const log = foldEvents(EMPTY_LOG, [
      ev({ type: 'plan', steps: [{ step: 'read', status: 'in_progress' }] }),
      ev({
        type: 'tool_call',
        callId: 'p',
        name: 'apply_patch',
        arguments: JSON.stringify({ input: patch }),
      }),
      ev({
        type: 'tool_output',
        callId: 'p',
        name: 'apply_patch',
        ok: true,
        durationMs: 5,
        output: 'ok',
      }),
      ev({
        type: 'usage',
        inputTokens: 100,
        cachedInputTokens: 60,
        outputTokens: 10,
        reasoningTokens: 2,
      }),
      ev({
        type: 'usage',
        inputTokens: 50,
        cachedInputTokens: 0,
        outputTokens: 5,
        reasoningTokens: 0,
      }),
      ev({ type: 'plan', explanation: 'on it', steps: [{ step: 'read', status: 'completed' }] }),
    ]);
    expect(log.items[1]).toMatchObject({
      kind: 'edit',
      files: ['update src/a.js', 'add b.txt'],
      ok: true,
      patch,
    });
    expect(log.plan).toEqual([{ step: 'read', status: 'completed' }]);
    expect(log.usage).toEqual({
      inputTokens: 150,
      cachedInputTokens: 60,
      outputTokens: 15,
      reasoningTokens: 2,
    });
    expect(log.items.filter((i) => i.kind === 'plan')).toHaveLength(2);
  });

  it('keeps an output whose call it never saw, and any other tool as a tool entry', () => {
    seq = 0;
    const log = foldEvents(EMPTY_LOG, [
      ev({ type: 'tool_call', callId: 'x', name: 'update_plan', arguments: '{}' }),
      ev({
        type: 'tool_output',
        callId: 'x',
        name: 'update_plan',
        ok: true,
        durationMs: 1,
        output: 'Plan updated',
      }),
      ev({
        type: 'tool_output',
        callId: 'gone',
        name: 'shell',
        ok: true,
        exitCode: 0,
        durationMs: 1,
        output: 'orphan',
      }),
    ]);
    expect(log.items).toMatchObject([
      { kind: 'tool', name: 'update_plan', ok: true, output: 'Plan updated' },
      { kind: 'tool', name: 'shell', output: 'orphan' },
    ]);
  });

  it('shows a refused network request as an entry of its own', () => {
    seq = 0;
    const log = foldEvents(EMPTY_LOG, [
      ev({ type: 'network.blocked', host: 'evil.test', port: 443, reason: 'not_allowed' }),
    ]);
    expect(log.items).toMatchObject([
      { kind: 'blocked', host: 'evil.test', port: 443, reason: 'not_allowed' },
    ]);
  });
});

describe('call arguments', () => {
  it('reads a command as a string, an argv or, failing JSON, as sent', () => {
    expect(commandOf('{"command":"npm test -- --grep x"}')).toBe('npm test -- --grep x');
    expect(commandOf('{"command":["rg","-n","foo"]}')).toBe('rg -n foo');
    expect(commandOf('not json')).toBe('not json');
  });

  it("lists an apply_patch call's files, JSON or raw", () => {
    expect(editOf('*** Begin Patch\n*** Delete File: old.txt\n*** End Patch').files).toEqual([
      'delete old.txt',
    ]);
    expect(editOf('{"input":"nothing"}')).toEqual({ files: [], patch: 'nothing' });
  });
});
