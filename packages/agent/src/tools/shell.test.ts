import { describe, expect, it } from 'vitest';
import { omissionMarker } from './output.js';
import { ShellArgs, commandTimeout, createShellTool, runShell } from './shell.js';
import { ScriptedSandbox, TEST_LIMITS, toolContext } from './test-support.js';
import { ToolInputError } from './workspace.js';

const args = (value: unknown): ShellArgs => ShellArgs.parse(value);

describe('shell arguments', () => {
  it('accept a string, an argv array, a workdir and a timeout (also named timeout)', () => {
    expect(args({ command: 'ls -la' })).toEqual({ command: 'ls -la', timeout_ms: undefined });
    expect(args({ command: ['rg', '-n', 'x'], workdir: 'src', timeout_ms: 5000 })).toEqual({
      command: ['rg', '-n', 'x'],
      workdir: 'src',
      timeout_ms: 5000,
    });
    expect(args({ command: 'x', timeout: 7000 }).timeout_ms).toBe(7000);
    // Extra fields other harnesses send are ignored rather than refused.
    expect(args({ command: 'x', justification: 'why' })).toEqual({
      command: 'x',
      timeout_ms: undefined,
    });
  });

  it('refuse a missing or empty command, and non-positive timeouts', () => {
    for (const bad of [
      {},
      { command: '' },
      { command: [] },
      { command: 5 },
      { command: 'x', timeout_ms: 0 },
      { command: 'x', timeout_ms: 1.5 },
    ]) {
      expect(ShellArgs.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('describe only the documented parameters to the model', () => {
    const { parameters, description } = createShellTool(TEST_LIMITS).definition;
    expect(Object.keys(parameters['properties'] as object)).toEqual([
      'command',
      'workdir',
      'timeout_ms',
    ]);
    expect(parameters['required']).toEqual(['command']);
    expect(parameters).not.toHaveProperty('$schema');
    expect(description).toContain('1 min unless timeout_ms says otherwise (at most 2 min)');
  });
});

describe('commandTimeout', () => {
  const context = { limits: TEST_LIMITS, deadline: 1_000_000 };
  it('uses the default, honours a request up to the maximum, and never passes the deadline', () => {
    expect(commandTimeout(undefined, context, 0)).toEqual({ timeoutMs: 60_000, byDeadline: false });
    expect(commandTimeout(90_000, context, 0)).toEqual({ timeoutMs: 90_000, byDeadline: false });
    expect(commandTimeout(999_999, context, 0)).toEqual({ timeoutMs: 120_000, byDeadline: false });
    expect(commandTimeout(undefined, context, 990_000)).toEqual({
      timeoutMs: 10_000,
      byDeadline: true,
    });
    expect(commandTimeout(undefined, context, 2_000_000)).toEqual({
      timeoutMs: 0,
      byDeadline: true,
    });
  });
});

describe('runShell', () => {
  it('runs a string with bash -lc semantics and an array as argv, in the resolved workdir', async () => {
    const sandbox = new ScriptedSandbox(() => ({ output: 'ok\n', durationMs: 1234 }));
    const context = toolContext(sandbox);
    const result = await runShell(args({ command: 'echo ok', workdir: 'pkg' }), context);
    await runShell(args({ command: ['ls', '-1'], timeout_ms: 3000 }), context);
    expect(sandbox.calls.map((c) => [c.command, c.options.cwd, c.options.timeoutMs])).toEqual([
      ['echo ok', '/workspace/pkg', 60_000],
      [['ls', '-1'], '/workspace', 3000],
    ]);
    expect(sandbox.calls[0]?.options.maxOutputBytes).toBe(TEST_LIMITS.eventOutputBytes);
    expect(sandbox.calls[0]?.options.signal).toBe(context.signal);
    expect(result).toMatchObject({ ok: true, exitCode: 0, durationMs: 1234, eventOutput: 'ok\n' });
    expect(result.output).toBe('Exit code: 0\nWall time: 1.2 seconds\nOutput:\nok\n');
  });

  it('refuses a workdir outside the workspace without running anything', async () => {
    const sandbox = new ScriptedSandbox();
    await expect(
      runShell(args({ command: 'ls', workdir: '../etc' }), toolContext(sandbox)),
    ).rejects.toThrow(ToolInputError);
    await expect(
      runShell(args({ command: 'ls', workdir: '/etc' }), toolContext(sandbox)),
    ).rejects.toThrow(/outside/);
    expect(sandbox.calls).toHaveLength(0);
  });

  it('refuses to start a command once the deadline has passed', async () => {
    const sandbox = new ScriptedSandbox();
    const context = toolContext(sandbox, { deadline: Date.now() - 1 });
    await expect(runShell(args({ command: 'ls' }), context)).rejects.toThrow(/no time left/);
    expect(sandbox.calls).toHaveLength(0);
  });

  it('reports a failure, a timeout and a kill to the model', async () => {
    const answers = [
      { exitCode: 2, output: 'boom\n' },
      { exitCode: null, signal: 'SIGKILL', timedOut: true },
      { exitCode: null, signal: 'SIGKILL', oomKilled: true },
    ];
    const sandbox = new ScriptedSandbox(() => answers.shift() ?? {});
    const context = toolContext(sandbox);
    const failed = await runShell(args({ command: 'false' }), context);
    expect(failed).toMatchObject({ ok: false, exitCode: 2 });
    expect(failed.output).toContain('Exit code: 2\n');
    const timedOut = await runShell(args({ command: 'sleep 100', timeout_ms: 1000 }), context);
    expect(timedOut).toMatchObject({ ok: false, exitCode: null });
    expect(timedOut.output).toContain('Exit code: none\n');
    expect(timedOut.output).toContain('The command timed out after 1000 ms and was killed.');
    const oom = await runShell(args({ command: 'x' }), context);
    expect(oom.output).toContain('ran out of memory');
  });

  it('says when the deadline, not the command, set the timeout', async () => {
    const sandbox = new ScriptedSandbox(() => ({ exitCode: null, timedOut: true }));
    const context = toolContext(sandbox, { deadline: Date.now() + 5000 });
    const result = await runShell(args({ command: 'sleep 100' }), context);
    expect(sandbox.calls[0]?.options.timeoutMs).toBeLessThanOrEqual(5000);
    expect(result.output).toMatch(/killed after \d+ ms: the task's time is running out/);
  });

  it('cuts long output to head and tail for the model, keeping more for the event', async () => {
    const lines = Array.from({ length: 500 }, (_, i) => `line ${String(i).padStart(3, '0')}`);
    const full = `${lines.join('\n')}\n`; // 4500 bytes
    const sandbox = new ScriptedSandbox(() => ({ output: full }));
    const result = await runShell(args({ command: 'cat big' }), toolContext(sandbox));
    expect(result.output).toContain('Total output: 4500 bytes\n');
    expect(result.output).toMatch(/\[… \d+ bytes of 4500 omitted …\]/);
    expect(result.output).toContain('line 000\n');
    expect(result.output).toContain('line 499\n');
    expect(result.output).not.toContain('line 250');
    expect(Buffer.byteLength(result.output)).toBeLessThan(TEST_LIMITS.modelOutputBytes + 200);
    // The event keeps it all: under eventOutputBytes.
    expect(result.eventOutput).toBe(full);
    expect(result.eventDroppedBytes).toBeUndefined();
  });

  it('counts what the sandbox dropped in both the model and the event output', async () => {
    const head = 'h'.repeat(TEST_LIMITS.eventOutputBytes / 2);
    const tail = 't'.repeat(TEST_LIMITS.eventOutputBytes / 2);
    const sandbox = new ScriptedSandbox(() => ({ output: head + tail, droppedBytes: 100_000 }));
    const result = await runShell(args({ command: 'yes' }), toolContext(sandbox));
    const total = 100_000 + TEST_LIMITS.eventOutputBytes;
    expect(result.eventDroppedBytes).toBe(100_000);
    expect(result.eventOutput).toBe(`${head}\n${omissionMarker(100_000, total)}\n${tail}`);
    expect(result.output).toContain(omissionMarker(total - TEST_LIMITS.modelOutputBytes, total));
  });
});
