import { createModelClient, type ModelClient, type TurnRequest } from '@patchbay/agent';
import { isPatchbayError } from '@patchbay/core';
import { once } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type LlamaServer,
  llamaServerBinary,
  scriptTokens,
  startLlamaServer,
} from '../support/llama.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * Patchbay against a real OpenAI-compatible server: llama.cpp's llama-server, on both wires, with
 * tiny generated models (see test/support/gguf.ts): one that always calls `shell`, one that
 * answers "Done.", one whose output the server cannot parse (it answers 500 `server_error`, in
 * the middle of a stream when streaming), and one with random weights.
 */

const binary = llamaServerBinary();

const TOOL_CALL = [
  ...['<t', 'ool', '_c', 'all', '>\n'],
  ...['{"', 'name', '":', ' "', 'shell', '","', 'arguments', '":{"', 'command', '":"'],
  ...['echo', ' hi', ' >', ' out', '.txt', '"}}\n'],
  ...['</', 'tool', '_call', '>', '<|im_end|>'],
];
const TEXT = ['Done', '.', '<|im_end|>'];
/**
 * Token 89083 is two bytes of an unfinished UTF-8 sequence, so the text is not valid UTF-8:
 * llama-server's output parser fails on it (seen with random weights) and the server answers
 * 500 `server_error`, or an error chunk in the middle of a stream.
 */
const BROKEN = ['Done', 89083, ' inhabit', '<|im_end|>'];

const servers: Record<'random' | 'tool' | 'text' | 'broken', LlamaServer> = {} as never;
let toolTokens = 0;

beforeAll(async () => {
  servers.random = await startLlamaServer({ binary });
  const [tool, text, broken] = await Promise.all(
    [TOOL_CALL, TEXT, BROKEN].map((pieces) => scriptTokens(servers.random, pieces)),
  );
  toolTokens = tool!.length;
  [servers.tool, servers.text, servers.broken] = await Promise.all([
    startLlamaServer({ binary, script: tool! }),
    startLlamaServer({ binary, script: text! }),
    startLlamaServer({ binary, script: broken! }),
  ]);
}, 180_000);

afterAll(async () => {
  await Promise.allSettled(Object.values(servers).map((s) => s.close()));
});

const SHELL = {
  name: 'shell',
  description: 'Runs a command.',
  parameters: {
    type: 'object',
    properties: { command: { type: 'string' } },
    required: ['command'],
  },
};

const ask = (text: string): TurnRequest => ({
  instructions: 'You are a coding agent.',
  input: [{ type: 'message', role: 'user', content: text }],
  tools: [SHELL],
});

const client = (server: LlamaServer, wire: 'responses' | 'chat', maxAttempts = 3): ModelClient =>
  createModelClient({
    model: 'tiny',
    wire,
    baseURL: server.url,
    retry: { maxAttempts, initialDelayMs: 50, maxDelayMs: 200 },
  });

describe.each(['responses', 'chat'] as const)('the model client on the %s wire', (wire) => {
  it('reads a real tool call (ids without a call_ prefix) and sends it back on the next turn', async () => {
    const model = client(servers.tool, wire);
    const first = await model.turn(ask('make a file'));
    const calls = first.output.filter((item) => item.type === 'function_call');
    expect(calls).toHaveLength(1);
    const [call] = calls;
    expect(call).toMatchObject({ name: 'shell', arguments: '{"command":"echo hi > out.txt"}' });
    expect(call!.call_id).toMatch(/^\S{8,}$/);
    expect(first.status).toBe('completed');
    // Usage as the server counts it: the whole script out, a real prompt in.
    expect(first.usageReported).toBe(true);
    expect(first.usage.outputTokens).toBe(toolTokens);
    expect(first.usage.inputTokens).toBeGreaterThan(20);
    // The call and its output go back as they came; the server takes the id it made.
    const second = await model.turn({
      ...ask('make a file'),
      input: [
        ...ask('make a file').input,
        ...first.output,
        { type: 'function_call_output', call_id: call!.call_id, output: 'Exit code: 0' },
      ],
    });
    expect(second.output.some((item) => item.type === 'function_call')).toBe(true);
    expect(second.usage.inputTokens).toBeGreaterThan(first.usage.inputTokens);
  });

  it('reads a plain answer', async () => {
    const turn = await client(servers.text, wire).turn(ask('say done'));
    const text = turn.output
      .filter((item) => item.type === 'message')
      .map((item) => JSON.stringify(item))
      .join('');
    expect(text).toContain('Done.');
    expect(turn.usage.outputTokens).toBe(3);
  });

  it('turns the server_error of unparsable output (mid-stream too) into model_error after bounded retries', async () => {
    const started = Date.now();
    const err: unknown = await client(servers.broken, wire, 3)
      .turn(ask('break'))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(isPatchbayError(err) && err.code).toBe('model_error');
    if (!isPatchbayError(err)) throw err;
    expect(err.message).toMatch(/after 3 attempts/);
    // The server's own words reach the message: that is what an operator has to go on.
    expect(err.message).toContain('does not match the expected');
    expect(err.details).toMatchObject({ attempts: 3, wire });
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('answers every random-weight turn with a result or a model_error, never a hang', async () => {
    const outcomes: string[] = [];
    for (const prompt of ['a', 'bb', 'ccc', 'dddd', 'eeeee', 'ffffff']) {
      outcomes.push(
        await client(servers.random, wire, 2)
          .turn(ask(prompt))
          .then(
            (turn) => `ok:${turn.usage.outputTokens > 0}`,
            (err: unknown) => (isPatchbayError(err) ? err.code : `unexpected: ${String(err)}`),
          ),
      );
    }
    for (const outcome of outcomes) expect(['ok:true', 'model_error']).toContain(outcome);
  }, 120_000);
});

/**
 * Sends each request to the llama-server its model name names, bytes unchanged both ways: one
 * stack, several scripted models.
 */
async function modelRouter(): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      let name = 'text';
      try {
        name = (JSON.parse(body.toString('utf8')) as { model?: string }).model ?? name;
      } catch {
        // not JSON (GET /v1/models): any server answers it
      }
      const target = new URL(servers[name as keyof typeof servers]?.url ?? servers.text.url);
      const upstream = request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, host: target.host },
        },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, server };
}

describe.each(['responses', 'chat'] as const)('a whole task on the %s wire', (wire) => {
  let stack: Stack;
  let router: Server;

  beforeAll(async () => {
    const routed = await modelRouter();
    router = routed.server;
    stack = await startStack({
      repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# app\n' })) },
      env: { OPENAI_BASE_URL: routed.url, PATCHBAY_MODEL_WIRE: wire, OPENAI_API_KEY: '' },
    });
  }, 120_000);

  afterAll(async () => {
    await stack?.close();
    router?.close();
  });

  const run = async (model: string, maxTurns = 3): Promise<any> => {
    const res = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Write hi to out.txt.',
      model: { name: model },
      limits: { maxTurns },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    return waitForTask(stack, res.body.id, {}, 150_000);
  };

  it('runs real tool calls in the sandbox until the turn budget ends, and keeps the patch', async () => {
    const task = await run('tool', 2);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('budget_exhausted');
    expect(task.result.files.map((f: { path: string }) => f.path)).toEqual(['out.txt']);
    const patch = await (await fetch(`${stack.url}/v1/tasks/${task.id}/patch`)).text();
    expect(patch).toContain('+hi');
    const { body } = await call(stack, 'GET', `/v1/tasks/${task.id}/events?after=0&limit=1000`);
    const calls = body.events.filter((e: any) => e.type === 'tool_call');
    expect(calls.map((e: any) => [e.name, e.arguments])).toEqual([
      ['shell', '{"command":"echo hi > out.txt"}'],
      ['shell', '{"command":"echo hi > out.txt"}'],
    ]);
    const outputs = body.events.filter((e: any) => e.type === 'tool_output');
    expect(outputs.map((e: any) => e.exitCode)).toEqual([0, 0]);
    expect(task.usage.outputTokens).toBe(2 * toolTokens);
  }, 180_000);

  it('finishes on a plain answer', async () => {
    const task = await run('text');
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.result.summary).toBe('Done.');
    expect(task.result.files).toEqual([]);
  }, 180_000);

  it('fails with a clear model_error when every answer is a server_error', async () => {
    const started = Date.now();
    const task = await run('broken');
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('model_error');
    expect(task.error.message).toMatch(
      /^model call failed after \d+ attempts: .*does not match the expected/,
    );
    expect(Date.now() - started).toBeLessThan(150_000);
  }, 180_000);
});
