import {
  ARTIFACTS,
  EMPTY_USAGE,
  PatchbayError,
  type Task,
  type TaskEventBody,
  newTurn,
} from '@patchbay/core';
import { makeTask } from '@patchbay/core/testing';
import { describe, expect, it } from 'vitest';
import { FakeSandbox, phaseHarness } from '../test-support.js';
import { agentPhase } from './agent.js';
import { collectPhase } from './collect.js';
import { fetchPhase } from './fetch.js';
import { provisionPhase, resumeKept } from './provision.js';
import { publishPhase } from './publish.js';
import { setupPhase } from './setup.js';
import { verifyPhase } from './verify.js';

const base = 'b'.repeat(40);
const result = {
  summary: 'one',
  files: [{ path: 'notes.txt', status: 'added' as const, additions: 1, deletions: 0 }],
  additions: 1,
  deletions: 0,
  patchBytes: 20,
  verify: null,
  stopReason: 'completed',
};

/** A record in its second turn: turn 1 ended with a result, turn 2 is queued. */
function secondTurn(): Partial<Task> {
  const now = new Date().toISOString();
  const plan = makeTask();
  return {
    baseCommit: base,
    result,
    turn: 2,
    turns: [
      {
        ...newTurn(plan, 1, 'make notes', now),
        status: 'succeeded',
        result,
        usage: { ...EMPTY_USAGE, modelCalls: 3 },
      },
      newTurn(plan, 2, 'edit notes', now),
    ],
  };
}

/** A collect script's output for one added file. */
const collected = (path: string) => ({
  output: Buffer.from(`12\n:000000 100644 0000000 1111111 A\x00${path}\x001\t0\t${path}\x00`),
});

const phases = (events: TaskEventBody[]) =>
  events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));

describe('fetch', () => {
  it('resolves the ref and makes the sandbox beside it; a later turn resolves its base commit', async () => {
    const h = phaseHarness({
      task: { environment: { ...phaseHarness().task().environment, setup: 'make' } },
    });
    const run = h.run();
    await fetchPhase(run, h.deps);
    await h.drain();
    expect(h.resolved).toEqual(['main']);
    expect(run.base).toBe(base);
    expect(h.task().baseCommit).toBe(base);
    expect((await run.acquiring)?.spec).toMatchObject({ taskId: 'task-1', network: 'outbound' });
    expect(phases(h.events)).toEqual(['fetch']);

    const later = phaseHarness({ task: secondTurn() });
    const next = later.run();
    await fetchPhase(next, later.deps);
    expect(later.resolved).toEqual([base]);
    expect((await next.acquiring)?.spec.network).toBe('none');
  });
});

describe('provision', () => {
  it('checks out the base; a later turn applies the patch so far on top', async () => {
    const h = phaseHarness();
    const run = h.run();
    await fetchPhase(run, h.deps);
    await provisionPhase(run, h.deps);
    expect(h.checkedOut).toEqual([`sb-1@${base}`]);
    expect(h.sandboxes[0]!.ran).toEqual([]);

    const later = phaseHarness({ task: secondTurn() });
    later.artifacts.set(
      ARTIFACTS.turnPatch(1),
      Buffer.from('diff --git a/notes.txt b/notes.txt\n'),
    );
    const next = later.run();
    await fetchPhase(next, later.deps);
    await provisionPhase(next, later.deps);
    const sandbox = later.sandboxes[0]!;
    expect([...sandbox.files.values()].map(String)).toEqual([
      'diff --git a/notes.txt b/notes.txt\n',
    ]);
    expect(sandbox.ran.map((r) => r.command)).toEqual([
      expect.arrayContaining(['git', 'apply', '--binary']),
    ]);
    expect(later.task().turns[1]?.warm).toBe(false);
    await next.events.drain();
    expect(later.events).toContainEqual(
      expect.objectContaining({ type: 'phase', phase: 'provision', warm: false }),
    );
  });

  it('fails the turn when the patch so far does not apply, or is missing', async () => {
    const h = phaseHarness({
      task: secondTurn(),
      answer: () => ({ exitCode: 1, output: Buffer.from('corrupt patch') }),
    });
    h.artifacts.set(ARTIFACTS.turnPatch(1), Buffer.from('garbage'));
    const run = h.run();
    await fetchPhase(run, h.deps);
    await expect(provisionPhase(run, h.deps)).rejects.toMatchObject({
      code: 'sandbox_error',
      message: expect.stringMatching(/corrupt patch/),
    });

    const missing = phaseHarness({ task: secondTurn() });
    const next = missing.run();
    await fetchPhase(next, missing.deps);
    await expect(provisionPhase(next, missing.deps)).rejects.toMatchObject({
      code: 'internal_error',
    });
  });

  it('resumes in a kept sandbox put back to the collected tree, or declines to', async () => {
    const h = phaseHarness({ task: secondTurn(), keepAliveMs: 60_000 });
    const kept = new FakeSandbox('kept', { image: 'i', taskId: 'task-1' });
    expect(await h.keeper.keep('task-1', 1, 1, kept)).toBe(true);
    const run = h.run();
    expect(await resumeKept(run, h.deps)).toBe(true);
    expect(run.sandbox).toBe(kept);
    expect(String(kept.ran[0]!.command)).toMatch(/checkout-index/);
    expect(h.task().turns[1]?.warm).toBe(true);
    await run.events.drain();
    expect(h.events).toContainEqual(
      expect.objectContaining({ type: 'phase', phase: 'provision', warm: true }),
    );
    expect(h.keeper.size).toBe(0);

    // A kept sandbox whose workspace cannot be put back is removed, and the turn starts afresh.
    const broken = phaseHarness({ task: secondTurn(), keepAliveMs: 60_000 });
    const bad = new FakeSandbox('bad', { image: 'i', taskId: 'task-1' }, () => ({ exitCode: 1 }));
    await broken.keeper.keep('task-1', 1, 1, bad);
    expect(await resumeKept(broken.run(), broken.deps)).toBe(false);
    expect(bad.destroyed).toBe(true);
    // A first turn never resumes.
    expect(await resumeKept(phaseHarness().run(), phaseHarness().deps)).toBe(false);
  });
});

describe('setup', () => {
  it('runs the script with secrets, masks them, then takes the network away', async () => {
    const h = phaseHarness({
      task: { environment: { ...phaseHarness().task().environment, setup: 'npm ci' } },
      answer: () => ({ output: Buffer.from('used secret-token-value\n') }),
    });
    const run = h.run();
    await fetchPhase(run, h.deps);
    await provisionPhase(run, h.deps);
    await setupPhase(run, h.deps);
    await h.drain();
    const sandbox = h.sandboxes[0]!;
    expect(sandbox.ran[0]).toMatchObject({
      command: 'npm ci',
      options: { env: { TOKEN: 'secret-token-value' } },
    });
    expect(sandbox.networkDisabled).toBe(true);
    expect(h.events).toContainEqual(
      expect.objectContaining({ type: 'command', phase: 'setup', exitCode: 0 }),
    );
  });

  it('fails with setup_failed and the masked tail; skips a task without setup', async () => {
    const h = phaseHarness({
      task: { environment: { ...phaseHarness().task().environment, setup: 'exit 3' } },
      answer: () => ({ exitCode: 3, output: Buffer.from('boom secret-token-value') }),
    });
    const run = h.run();
    await fetchPhase(run, h.deps);
    await provisionPhase(run, h.deps);
    const failure = await setupPhase(run, h.deps).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(PatchbayError);
    expect(failure).toMatchObject({
      code: 'setup_failed',
      message: 'setup exited with 3: boom [secret]',
    });

    const none = phaseHarness();
    const plain = none.run();
    await fetchPhase(plain, none.deps);
    await provisionPhase(plain, none.deps);
    await setupPhase(plain, none.deps);
    expect(phases(none.events)).not.toContain('setup');
  });
});

describe('agent', () => {
  it("runs the turn's prompt with the conversation so far; usage adds up over turns", async () => {
    const h = phaseHarness({ task: secondTurn() });
    const history = [{ type: 'message', role: 'user', content: 'make notes' }];
    h.artifacts.set(ARTIFACTS.turnConversation(1), Buffer.from(JSON.stringify(history)));
    const run = h.run();
    run.sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' });
    await agentPhase(run, h.deps);
    expect(h.agentInputs[0]).toMatchObject({ prompt: 'edit notes', history });
    expect(h.task().turns[1]?.usage.modelCalls).toBe(2);
    expect(h.task().usage.modelCalls).toBe(5);
    expect(JSON.parse(String(h.artifacts.get(ARTIFACTS.turnConversation(2))))).toEqual([
      { type: 'message', role: 'user', content: 'edit notes' },
    ]);
    expect(h.artifacts.has(ARTIFACTS.turnTranscript(2))).toBe(true);
  });

  it('gives a first turn no history', async () => {
    const h = phaseHarness();
    const run = h.run();
    run.sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' });
    await agentPhase(run, h.deps);
    expect(h.agentInputs[0]?.history).toBeUndefined();
    expect(h.agentInputs[0]?.prompt).toBe('Fix the bug.');
  });
});

describe('collect', () => {
  it("stores the cumulative patch as turn 1's; a later turn also what it alone changed", async () => {
    const h = phaseHarness({ answer: () => collected('notes.txt') });
    const run = h.run();
    run.base = base;
    run.sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' }, () =>
      collected('notes.txt'),
    );
    (run.sandbox as FakeSandbox).files.set(
      '/run/patchbay/collect/patch.diff',
      Buffer.from('cumulative'),
    );
    await collectPhase(run, h.deps);
    expect(run.collected?.patch.files.map((f) => f.path)).toEqual(['notes.txt']);
    expect(String(h.artifacts.get(ARTIFACTS.turnPatch(1)))).toBe('cumulative');
    expect(String(h.artifacts.get(ARTIFACTS.turnChanges(1)))).toBe('cumulative');

    const later = phaseHarness({ task: secondTurn() });
    later.artifacts.set(ARTIFACTS.turnPatch(1), Buffer.from('previous'));
    const next = later.run();
    const sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' }, () =>
      collected('notes.txt'),
    );
    sandbox.files.set('/run/patchbay/collect/patch.diff', Buffer.from('cumulative'));
    sandbox.files.set('/run/patchbay/collect/changes.diff', Buffer.from('changes'));
    next.sandbox = sandbox;
    await collectPhase(next, later.deps);
    expect(String(sandbox.files.get('/run/patchbay/collect/previous.diff'))).toBe('previous');
    expect(String(later.artifacts.get(ARTIFACTS.turnPatch(2)))).toBe('cumulative');
    expect(String(later.artifacts.get(ARTIFACTS.turnChanges(2)))).toBe('changes');
    expect(String(later.artifacts.get(ARTIFACTS.turnPatch(1)))).toBe('previous');
  });
});

describe('verify', () => {
  it('records the verdict; skips a task without verify and an agent that ran out of time', async () => {
    const h = phaseHarness({
      task: { environment: { ...phaseHarness().task().environment, verify: 'npm test' } },
    });
    const run = h.run();
    run.sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' }, () => ({
      exitCode: 1,
      output: Buffer.from('1 failing'),
    }));
    await verifyPhase(run, h.deps);
    expect(run.verify).toMatchObject({
      command: 'npm test',
      exitCode: 1,
      passed: false,
      output: '1 failing',
    });

    const timedOut = h.run();
    timedOut.outcome = {
      summary: null,
      stopReason: 'timeout',
      usage: EMPTY_USAGE,
      transcript: {},
      conversation: [],
    };
    timedOut.sandbox = run.sandbox;
    await verifyPhase(timedOut, h.deps);
    expect(timedOut.verify).toBeNull();
  });
});

describe('publish', () => {
  const patch = (files: string[]) => ({
    patch: Buffer.from('x'),
    files: files.map((path) => ({ path, status: 'added' as const, additions: 1, deletions: 0 })),
    additions: files.length,
    deletions: 0,
  });

  it('ends the turn with the cumulative result and the turn’s own, keeping the sandbox', async () => {
    const h = phaseHarness({ task: secondTurn(), keepAliveMs: 60_000 });
    const run = h.run();
    const sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' });
    run.sandbox = sandbox;
    run.outcome = {
      summary: 'edited',
      stopReason: 'completed',
      usage: EMPTY_USAGE,
      transcript: {},
      conversation: [],
    };
    run.collected = { patch: patch(['notes.txt']), changes: patch(['other.txt']) };
    await publishPhase(run, h.deps);
    expect(h.task()).toMatchObject({ status: 'succeeded', error: null });
    expect(h.task().result?.files.map((f) => f.path)).toEqual(['notes.txt']);
    expect(h.task().turns[1]).toMatchObject({ status: 'succeeded', result: { summary: 'edited' } });
    expect(h.task().turns[1]?.result?.files.map((f) => f.path)).toEqual(['other.txt']);
    expect(h.task().turns[0]?.result).toEqual(result);
    expect(sandbox.destroyed).toBe(false);
    expect(h.keeper.size).toBe(1);
    expect(h.events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('fails a turn whose budget ran out or whose verify failed, and removes the sandbox when none is kept', async () => {
    const h = phaseHarness();
    const run = h.run();
    const sandbox = new FakeSandbox('sb', { image: 'i', taskId: 'task-1' });
    run.sandbox = sandbox;
    run.outcome = {
      summary: null,
      stopReason: 'max_turns',
      usage: EMPTY_USAGE,
      transcript: {},
      conversation: [],
    };
    run.collected = { patch: patch([]), changes: patch([]) };
    await publishPhase(run, h.deps);
    expect(h.task().error?.code).toBe('budget_exhausted');
    expect(h.task().turns[0]?.result).not.toBeNull();
    expect(sandbox.destroyed).toBe(true);
  });
});
