import { Readable } from 'node:stream';
import { EMPTY_USAGE, silentLogger, type Task, type TaskEventBody } from '@patchbay/core';
import { makeTask } from '@patchbay/core/testing';
import type {
  ExecOptions,
  ExecResult,
  Reach,
  Sandbox,
  SandboxProvider,
  SandboxSpec,
} from '@patchbay/sandbox';
import { TaskLifecycle, type ArtifactStore, type EventLog, type TaskStore } from '@patchbay/store';
import { EventWriter } from './event-writer.js';
import { SandboxKeeper } from './keeper.js';
import type { AgentRunInput, AgentRunner, RepoSource } from './ports.js';
import { type PhaseDeps, TaskRun } from './run.js';

/** A command a fake sandbox ran: its argv or script, and the options it ran with. */
export interface RanCommand {
  command: string | readonly string[];
  options: ExecOptions | undefined;
}

/** A sandbox that records what is done to it and answers commands from `answer`. */
export class FakeSandbox implements Sandbox {
  readonly ran: RanCommand[] = [];
  readonly files = new Map<string, Buffer>();
  destroyed = false;
  networkDisabled = false;
  broken = false;

  constructor(
    readonly id: string,
    readonly spec: SandboxSpec,
    private readonly answer: (command: string) => Partial<ExecResult> = () => ({}),
  ) {}

  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult> {
    this.ran.push({ command, options });
    const text = typeof command === 'string' ? command : command.join(' ');
    return Promise.resolve({
      exitCode: 0,
      signal: null,
      output: Buffer.from(''),
      droppedBytes: 0,
      durationMs: 1,
      timedOut: false,
      aborted: false,
      oomKilled: false,
      ...this.answer(text),
    });
  }
  readFile(path: string): Promise<Buffer> {
    return Promise.resolve(this.files.get(path) ?? Buffer.alloc(0));
  }
  writeFile(path: string, data: Buffer | string): Promise<void> {
    this.files.set(path, Buffer.from(data));
    return Promise.resolve();
  }
  putArchive(): Promise<void> {
    return Promise.resolve();
  }
  getArchive(): Promise<Readable> {
    return Promise.resolve(Readable.from([]));
  }
  quiesce(): Promise<{ killed: number }> {
    return Promise.resolve({ killed: 0 });
  }
  disableNetwork(): Promise<void> {
    this.networkDisabled = true;
    return Promise.resolve();
  }
  reach(): Promise<Reach> {
    return Promise.reject(new Error('a fake sandbox reaches no service'));
  }
  addEnv(): void {}
  destroy(): Promise<void> {
    this.destroyed = true;
    return Promise.resolve();
  }
}

/**
 * In-memory collaborators of the phases, recording what they were asked: a one-record store, an
 * event list, an artifact map, fake sandboxes, a repository source and an agent.
 */
export function phaseHarness(
  options: {
    task?: Partial<Task>;
    answer?: (command: string) => Partial<ExecResult>;
    agent?: (input: AgentRunInput) => ReturnType<AgentRunner['run']>;
    keepAliveMs?: number;
  } = {},
) {
  let record: Task = makeTask({
    id: 'task-1',
    repo: { url: 'https://example.com/r.git', ref: 'main' },
    limits: { timeoutSeconds: 60, maxTurns: 5, maxTokens: 10_000 },
    ...options.task,
  });
  const events: TaskEventBody[] = [];
  const artifacts = new Map<string, Buffer>();
  const sandboxes: FakeSandbox[] = [];
  const resolved: (string | null)[] = [];
  const checkedOut: string[] = [];
  const agentInputs: AgentRunInput[] = [];
  const store = {
    get: () => Promise.resolve(record),
    update: (
      _id: string,
      change: (t: Task) => Task | null,
      options?: { events?: (next: Task) => readonly TaskEventBody[] },
    ) => {
      if (['succeeded', 'failed', 'cancelled'].includes(record.status))
        return Promise.resolve(null);
      const next = change(record);
      if (next) {
        record = next;
        events.push(...(options?.events?.(next) ?? []));
      }
      return Promise.resolve(next);
    },
    secrets: () => Promise.resolve({ TOKEN: 'secret-token-value' }),
    deleteSecrets: () => Promise.resolve(),
  } as unknown as TaskStore;
  const log = {
    append: (_id: string, body: TaskEventBody | readonly TaskEventBody[]) => {
      events.push(...(Array.isArray(body) ? (body as TaskEventBody[]) : [body as TaskEventBody]));
      return Promise.resolve(events.length);
    },
    archive: () => Promise.resolve(),
  } as unknown as EventLog;
  const artifactStore = {
    put: (_id: string, name: string, body: Buffer | string) => {
      artifacts.set(name, Buffer.from(body));
      return Promise.resolve();
    },
    get: (_id: string, name: string) => {
      const body = artifacts.get(name);
      return Promise.resolve(
        body === undefined ? null : { body: Readable.from([body]), size: body.length },
      );
    },
  } as unknown as ArtifactStore;
  const provider: SandboxProvider = {
    ready: () => Promise.resolve(),
    // By name: a fake engine has no ids.
    imageId: (image) => Promise.resolve(image),
    create: (spec) => {
      const sandbox = new FakeSandbox(`sb-${sandboxes.length + 1}`, spec, options.answer);
      sandboxes.push(sandbox);
      return Promise.resolve(sandbox);
    },
    running: () => Promise.resolve(sandboxes.filter((s) => !s.destroyed).length),
    close: () => Promise.resolve(),
  };
  const repos: RepoSource = {
    resolve: (_url, ref) => {
      resolved.push(ref);
      return Promise.resolve('b'.repeat(40));
    },
    checkout: (sandbox, _url, sha) => {
      checkedOut.push(`${sandbox.id}@${sha}`);
      return Promise.resolve();
    },
  };
  const agent: AgentRunner = {
    run: (input) => {
      agentInputs.push(input);
      return (
        options.agent?.(input) ??
        Promise.resolve({
          summary: 'Done.',
          stopReason: 'completed',
          usage: { ...EMPTY_USAGE, modelCalls: 2 },
          transcript: { items: [] },
          conversation: [{ type: 'message', role: 'user', content: input.prompt }],
        })
      );
    },
  };
  const keeper = new SandboxKeeper({
    keepAliveMs: options.keepAliveMs ?? 0,
    maxKept: 4,
    log: silentLogger,
  });
  const deps: PhaseDeps = {
    store,
    lifecycle: new TaskLifecycle({ store, events: log }),
    artifacts: artifactStore,
    sandboxes: provider,
    repos,
    agent,
    keeper,
    log: silentLogger,
    now: () => new Date(),
    environments: undefined,
    egress: undefined,
    options: {
      maxPatchBytes: 1024 * 1024,
      outputEventBytes: 1024 * 1024,
      verifyOutputBytes: 1024,
      allowAgentNetwork: false,
    },
  };
  const writer = new EventWriter(log, record.id);
  return {
    deps,
    events,
    artifacts,
    sandboxes,
    resolved,
    checkedOut,
    agentInputs,
    keeper,
    task: () => record,
    /** A run of the task as the record stands now. */
    run: (signal = new AbortController().signal) =>
      new TaskRun(record, deps, writer, { signal, try: 1 }),
    drain: () => writer.drain(),
  };
}
