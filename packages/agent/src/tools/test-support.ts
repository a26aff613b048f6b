// Test support for the tools and the loop: hand-written sandboxes behind the `Sandbox` interface.
// Not exported from the package.

import { spawn } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type { TaskEventBody } from '@patchbay/core';
import type { ExecOptions, ExecResult, Reach, Sandbox, SandboxSpec } from '@patchbay/sandbox';
import type { ToolContext, ToolLimits } from './types.js';

/** An exec call as a fake sandbox saw it. */
export interface ExecCall {
  command: string | readonly string[];
  options: ExecOptions;
}

/** The parts of an {@link ExecResult} a test usually sets. */
export type ExecAnswer = Partial<Omit<ExecResult, 'output'>> & { output?: string | Buffer };

/** A finished command's result, with defaults for what `answer` leaves out. */
function execResult(answer: ExecAnswer = {}): ExecResult {
  const { output = '', ...rest } = answer;
  return {
    exitCode: 0,
    signal: null,
    droppedBytes: 0,
    durationMs: 5,
    timedOut: false,
    aborted: false,
    oomKilled: false,
    output: Buffer.isBuffer(output) ? output : Buffer.from(output, 'utf8'),
    ...rest,
  };
}

abstract class BaseFakeSandbox implements Sandbox {
  readonly id = 'fake';
  readonly spec: Readonly<SandboxSpec> = { image: 'fake', taskId: 'task-fake' };
  broken = false;
  readonly calls: ExecCall[] = [];

  abstract exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  abstract readFile(
    file: string,
    options?: { maxBytes?: number; signal?: AbortSignal },
  ): Promise<Buffer>;
  abstract writeFile(file: string, data: Buffer | string): Promise<void>;

  putArchive(_tar: Readable): Promise<void> {
    return Promise.reject(new Error('not supported by this fake'));
  }

  getArchive(_path: string): Promise<Readable> {
    return Promise.reject(new Error('not supported by this fake'));
  }

  quiesce(): Promise<{ killed: number }> {
    return Promise.resolve({ killed: 0 });
  }

  disableNetwork(): Promise<void> {
    return Promise.resolve();
  }
  reach(): Promise<Reach> {
    return Promise.reject(new Error('a fake sandbox reaches no service'));
  }
  addEnv(): void {}

  destroy(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * A sandbox whose commands are answered by `handler`, with files in a map. For tests of what a
 * tool asks the sandbox to do.
 */
export class ScriptedSandbox extends BaseFakeSandbox {
  readonly files = new Map<string, Buffer>();

  constructor(
    private readonly handler: (call: ExecCall) => ExecAnswer | Promise<ExecAnswer> = () => ({}),
  ) {
    super();
  }

  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    const call = { command, options };
    this.calls.push(call);
    return execResult(await this.handler(call));
  }

  async readFile(file: string): Promise<Buffer> {
    const data = this.files.get(file);
    if (data === undefined) throw new Error(`ENOENT: ${file}`);
    return data;
  }

  async writeFile(file: string, data: Buffer | string): Promise<void> {
    this.files.set(file, Buffer.isBuffer(data) ? data : Buffer.from(data));
  }
}

/**
 * A "sandbox" that runs its commands as local processes, for unit tests that need real
 * commands (`realpath`, `find`, `bash`) on a temporary directory standing in for /workspace.
 * It keeps head + tail of the output like the real exec server (`maxOutputBytes / 2` first).
 */
export class LocalProcessSandbox extends BaseFakeSandbox {
  async exec(command: string | readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    this.calls.push({ command, options });
    const argv = typeof command === 'string' ? ['bash', '-c', command] : [...command];
    const [file, ...args] = argv;
    if (file === undefined) throw new Error('empty argv');
    const max = options.maxOutputBytes ?? 1024 * 1024;
    const started = Date.now();
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, {
        cwd: options.cwd ?? process.cwd(),
        env: { ...process.env, ...options.env },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      const chunks: Buffer[] = [];
      let timedOut = false;
      let aborted = false;
      const kill = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              timedOut = true;
              kill();
            }, options.timeoutMs);
      const onAbort = (): void => {
        aborted = true;
        kill();
      };
      options.signal?.addEventListener('abort', onAbort, { once: true });
      child.stdout.on('data', (c: Buffer) => chunks.push(c));
      child.stderr.on('data', (c: Buffer) => chunks.push(c));
      child.on('error', reject);
      // A command that exits without reading its input closes the pipe: not an error.
      child.stdin.on('error', () => undefined);
      child.stdin.end(options.stdin ?? '');
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        const all = Buffer.concat(chunks);
        let output = all;
        let droppedBytes = 0;
        if (all.length > max) {
          const head = Math.floor(max / 2);
          const tail = max - head;
          output = Buffer.concat([all.subarray(0, head), all.subarray(all.length - tail)]);
          droppedBytes = all.length - max;
        }
        resolve({
          exitCode: code,
          signal,
          output,
          droppedBytes,
          durationMs: Date.now() - started,
          timedOut,
          aborted,
          oomKilled: false,
        });
      });
    });
  }

  async readFile(file: string): Promise<Buffer> {
    return readFile(file);
  }

  async writeFile(file: string, data: Buffer | string): Promise<void> {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
  }
}

/** Tool limits for tests: small enough to see truncation. */
export const TEST_LIMITS: ToolLimits = {
  defaultCommandTimeoutMs: 60_000,
  maxCommandTimeoutMs: 120_000,
  modelOutputBytes: 1024,
  eventOutputBytes: 8192,
};

/** A tool context for `sandbox`, collecting emitted events. */
export function toolContext(
  sandbox: Sandbox,
  overrides: Partial<ToolContext> = {},
): ToolContext & { events: TaskEventBody[] } {
  const events: TaskEventBody[] = [];
  return {
    sandbox,
    workspace: '/workspace',
    signal: new AbortController().signal,
    deadline: Date.now() + 3_600_000,
    limits: TEST_LIMITS,
    emit: (event) => events.push(event),
    events,
    ...overrides,
  };
}
