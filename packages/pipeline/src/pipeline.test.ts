import {
  EMPTY_USAGE,
  PatchbayError,
  silentLogger,
  type Task,
  type TaskEventBody,
} from '@patchbay/core';
import { makeTask } from '@patchbay/core/testing';
import type { Sandbox, SandboxProvider, SandboxSpec } from '@patchbay/sandbox';
import type { ArtifactStore, EventLog, TaskStore } from '@patchbay/store';
import { describe, expect, it } from 'vitest';
import { Pipeline } from './pipeline.js';
import type { AgentRunner, RepoSource } from './ports.js';

function newTask(): Task {
  return makeTask({
    id: 'task-1',
    repo: { url: 'https://example.com/r.git', ref: 'main' },
    limits: { timeoutSeconds: 60, maxTurns: 5, maxTokens: 10_000 },
  });
}

const wait = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The pipeline's collaborators as in-memory fakes; `timeline` records what happened when. */
function harness(options: {
  resolve: (signal: AbortSignal) => Promise<string>;
  create: (spec: SandboxSpec, signal: AbortSignal | undefined) => Promise<void>;
}) {
  let record = newTask();
  const timeline: string[] = [];
  const events: TaskEventBody[] = [];
  const destroyed: string[] = [];
  const made: string[] = [];
  const store = {
    get: () => Promise.resolve(record),
    update: (
      _id: string,
      change: (t: Task) => Task | null,
      options?: { events?: (next: Task) => readonly TaskEventBody[] },
    ) => {
      const next = change(record);
      if (next) {
        record = next;
        events.push(...(options?.events?.(next) ?? []));
      }
      return Promise.resolve(next);
    },
    secrets: () => Promise.resolve({}),
    deleteSecrets: () => Promise.resolve(),
  } as unknown as TaskStore;
  const log = {
    append: (_id: string, body: TaskEventBody | readonly TaskEventBody[]) => {
      events.push(...(Array.isArray(body) ? body : [body as TaskEventBody]));
      return Promise.resolve(events.length);
    },
    archive: () => Promise.resolve(),
  } as unknown as EventLog;
  const artifacts = { put: () => Promise.resolve() } as unknown as ArtifactStore;
  const sandboxes: SandboxProvider = {
    ready: () => Promise.resolve(),
    imageId: (image) => Promise.resolve(image),
    create: async (spec, opts) => {
      timeline.push('create:start');
      await options.create(spec, opts?.signal);
      const id = `sb-${made.length + 1}`;
      made.push(id);
      timeline.push('create:done');
      return {
        id,
        spec,
        broken: false,
        // The patch collection's one exec: an empty patch, no files.
        exec: () => Promise.resolve({ exitCode: 0, output: Buffer.from('0\n'), droppedBytes: 0 }),
        quiesce: () => Promise.resolve({ killed: 0 }),
        destroy: () => {
          destroyed.push(id);
          return Promise.resolve();
        },
      } as unknown as Sandbox;
    },
    running: () => Promise.resolve(made.length - destroyed.length),
    close: () => Promise.resolve(),
  };
  const repos: RepoSource = {
    resolve: async (_url, _ref, signal) => {
      timeline.push('resolve:start');
      const sha = await options.resolve(signal);
      timeline.push('resolve:done');
      return sha;
    },
    checkout: () => {
      timeline.push('checkout');
      return Promise.resolve();
    },
  };
  const agent: AgentRunner = {
    run: () =>
      Promise.resolve({
        summary: 'ok',
        stopReason: 'completed',
        usage: EMPTY_USAGE,
        transcript: [],
        conversation: [],
      }),
  };
  const pipeline = new Pipeline({
    store,
    events: log,
    artifacts,
    sandboxes,
    repos,
    agent,
    log: silentLogger,
  });
  return {
    pipeline,
    timeline,
    events,
    made,
    destroyed,
    task: () => record,
  };
}

const sha = 'a'.repeat(40);
const context = () => ({
  signal: new AbortController().signal,
  try: 1,
});

describe('Pipeline: sandbox made beside the fetch', () => {
  it('starts making the sandbox before the fetch is done, and checks out after both', async () => {
    const h = harness({
      resolve: async () => {
        await wait(30);
        return sha;
      },
      create: () => wait(10),
    });
    await h.pipeline.run('task-1', context());
    expect(h.task().status).toBe('succeeded');
    expect(h.timeline.indexOf('create:start')).toBeLessThan(h.timeline.indexOf('resolve:done'));
    expect(h.timeline.indexOf('checkout')).toBeGreaterThan(h.timeline.indexOf('resolve:done'));
    expect(h.timeline.indexOf('checkout')).toBeGreaterThan(h.timeline.indexOf('create:done'));
    const phases = h.events.flatMap((e) => (e.type === 'phase' ? [e.phase] : []));
    expect(phases.slice(0, 3)).toEqual(['fetch', 'provision', 'agent']);
    expect(h.destroyed).toEqual(h.made);
  });

  it('removes a sandbox that was made while the fetch failed', async () => {
    const h = harness({
      resolve: async () => {
        await wait(20);
        throw new PatchbayError('ref_not_found', 'no such ref');
      },
      create: () => wait(5),
    });
    await h.pipeline.run('task-1', context());
    expect(h.task().status).toBe('failed');
    expect(h.task().error?.code).toBe('ref_not_found');
    expect(h.made).toHaveLength(1);
    expect(h.destroyed).toEqual(h.made);
  });

  it('calls off a sandbox still being made when the fetch fails, and removes it if it came', async () => {
    let createSignal: AbortSignal | undefined;
    const h = harness({
      resolve: async () => {
        await wait(5);
        throw new PatchbayError('repo_unreachable', 'down');
      },
      create: async (_spec, signal) => {
        createSignal = signal;
        await wait(40);
      },
    });
    await h.pipeline.run('task-1', context());
    expect(h.task().error?.code).toBe('repo_unreachable');
    expect(createSignal?.aborted).toBe(true);
    // This fake ignores the abort and finishes anyway: what it made is removed all the same,
    // before the task is marked finished.
    expect(h.made).toHaveLength(1);
    expect(h.destroyed).toEqual(h.made);
  });

  it('ends with the sandbox error when the sandbox cannot be made, after the fetch', async () => {
    const h = harness({
      resolve: () => Promise.resolve(sha),
      create: () => Promise.reject(new PatchbayError('sandbox_error', 'no image')),
    });
    await h.pipeline.run('task-1', context());
    expect(h.task().error?.code).toBe('sandbox_error');
    expect(h.made).toHaveLength(0);
  });

  it('retries a retryable sandbox error while tries are left, and fails with it after the last', async () => {
    const unreachable = () =>
      Promise.reject(
        new PatchbayError('sandbox_error', 'the Docker engine could not be reached', {
          retryable: true,
        }),
      );
    const h = harness({ resolve: () => Promise.resolve(sha), create: unreachable });
    await expect(h.pipeline.run('task-1', { ...context(), try: 1 })).rejects.toMatchObject({
      code: 'sandbox_error',
      retryable: true,
    });
    // Not finished: the queue runs it again.
    expect(h.task().status).toBe('running');
    expect(h.events.at(-1)).toMatchObject({
      type: 'error',
      code: 'sandbox_error',
      message: expect.stringMatching(/will be retried$/),
    });
    await h.pipeline.run('task-1', { ...context(), try: 3 });
    expect(h.task().status).toBe('failed');
    expect(h.task().error?.code).toBe('sandbox_error');
  });

  it('cancels during the fetch: the sandbox being made is called off and nothing is left', async () => {
    const queue = new AbortController();
    const h = harness({
      resolve: (signal) =>
        new Promise((_, reject) =>
          signal.addEventListener('abort', () =>
            reject(new PatchbayError('cancelled', 'fetch cancelled')),
          ),
        ),
      create: (_spec, signal) =>
        new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 200);
          signal?.addEventListener('abort', () => {
            clearTimeout(timer);
            reject(new PatchbayError('cancelled', 'create cancelled'));
          });
        }),
    });
    const running = h.pipeline.run('task-1', {
      signal: queue.signal,
      try: 1,
    });
    await wait(20);
    queue.abort(new PatchbayError('cancelled', 'cancelled by the user'));
    await running;
    expect(h.task().status).toBe('cancelled');
    expect(h.made).toHaveLength(0);
  });
});
