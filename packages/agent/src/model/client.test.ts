import { isPatchbayError, loadConfig, type PatchbayError } from '@patchbay/core';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type ScriptStep,
  type ScriptedModelServer,
  startScriptedModelServer,
} from '../testing/index.js';
import {
  type ModelClientOptions,
  createModelClient,
  modelClientOptionsFromConfig,
} from './client.js';
import {
  AbortError,
  type ConversationItem,
  type ModelWire,
  type ToolDefinition,
  type TurnEvent,
  type TurnRequest,
  assistantText,
  functionCallOutput,
  functionCalls,
  isAbortError,
  userMessage,
} from './types.js';
import { UsageAccumulator } from './usage.js';

const servers: ScriptedModelServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(script: Iterable<ScriptStep>, options: { apiKey?: string } = {}) {
  const server = await startScriptedModelServer({ script, ...options });
  servers.push(server);
  return server;
}

function clientFor(
  server: ScriptedModelServer,
  wire: ModelWire,
  options: Partial<ModelClientOptions> = {},
) {
  return createModelClient({
    model: 'scripted-model',
    wire,
    baseURL: server.url,
    apiKey: 'sk-test',
    ...options,
    // Fast backoff so retry tests take milliseconds; retry-after still applies as sent.
    retry: { initialDelayMs: 5, maxDelayMs: 20, ...options.retry },
  });
}

const shell: ToolDefinition = {
  name: 'shell',
  description: 'Runs a command in the sandbox.',
  parameters: {
    type: 'object',
    properties: { command: { type: 'string' }, workdir: { type: 'string' } },
    required: ['command'],
  },
};

function request(input: ConversationItem[], extra: Partial<TurnRequest> = {}): TurnRequest {
  return { instructions: 'You are a careful coding agent.', input, tools: [shell], ...extra };
}

async function expectModelError(promise: Promise<unknown>): Promise<PatchbayError> {
  const err = await promise.then(
    () => {
      throw new Error('expected the turn to fail');
    },
    (e: unknown) => e,
  );
  expect(isPatchbayError(err, 'model_error')).toBe(true);
  return err as PatchbayError;
}

describe.each<ModelWire>(['responses', 'chat'])('model client over the %s wire', (wire) => {
  it('returns a text answer with usage', async () => {
    const server = await serve([
      { text: 'Hello from the scripted model.', usage: { inputTokens: 120, outputTokens: 9 } },
    ]);
    const events: TurnEvent[] = [];
    const result = await clientFor(server, wire).turn(
      request([userMessage('Say hello.')], { onEvent: (e) => events.push(e) }),
    );
    expect(assistantText(result.output)).toBe('Hello from the scripted model.');
    expect(result.status).toBe('completed');
    expect(result.attempts).toBe(1);
    expect(result.model).toBe('scripted-model');
    expect(result.usage).toEqual({
      inputTokens: 120,
      cachedInputTokens: 0,
      outputTokens: 9,
      reasoningTokens: 0,
    });
    expect(result.usageReported).toBe(true);
    const deltas = events.filter((e) => e.type === 'text_delta').map((e) => e.delta);
    expect(deltas.length).toBeGreaterThan(1);
    expect(deltas.join('')).toBe('Hello from the scripted model.');
    expect(events.some((e) => e.type === 'item_done')).toBe(true);
    const sent = server.requests[0]!;
    expect(sent.headers.authorization).toBe('Bearer sk-test');
    expect(sent.stream).toBe(true);
    if (wire === 'responses') {
      expect(sent.body).toMatchObject({
        store: false,
        instructions: 'You are a careful coding agent.',
      });
    } else {
      expect(sent.body).toMatchObject({
        messages: [
          { role: 'system', content: 'You are a careful coding agent.' },
          { role: 'user' },
        ],
        stream_options: { include_usage: true },
      });
    }
    server.assertNoViolations();
  });

  it('round-trips a function call and its output, paired by call_id', async () => {
    const server = await serve([
      { text: 'Let me look.', calls: [{ name: 'shell', arguments: { command: 'ls' } }] },
      (req) => ({ text: `The listing says: ${req.lastToolOutput ?? 'nothing'}` }),
    ]);
    const client = clientFor(server, wire);
    const conversation: ConversationItem[] = [userMessage('What files are there?')];
    const first = await client.turn(request(conversation));
    const calls = functionCalls(first.output);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: 'shell', arguments: '{"command":"ls"}' });
    expect(JSON.parse(calls[0]!.arguments)).toEqual({ command: 'ls' });

    conversation.push(...first.output, functionCallOutput(calls[0]!.call_id, 'README.md\nsrc'));
    const second = await client.turn(request(conversation));
    expect(assistantText(second.output)).toBe('The listing says: README.md\nsrc');
    expect(functionCalls(second.output)).toEqual([]);
    server.assertNoViolations();
  });

  it('returns parallel function calls in order and accepts their outputs in one turn', async () => {
    const server = await serve([
      {
        calls: [
          { name: 'shell', arguments: { command: 'cat a.txt' } },
          { name: 'shell', arguments: { command: 'cat b.txt' } },
          { name: 'shell', arguments: { command: 'cat c.txt' } },
        ],
      },
      (req) => ({ text: req.toolOutputs.map((o) => o.output).join(',') }),
    ]);
    const client = clientFor(server, wire);
    const conversation: ConversationItem[] = [userMessage('Read three files.')];
    const first = await client.turn(request(conversation));
    const calls = functionCalls(first.output);
    expect(calls.map((c) => JSON.parse(c.arguments) as unknown)).toEqual([
      { command: 'cat a.txt' },
      { command: 'cat b.txt' },
      { command: 'cat c.txt' },
    ]);
    expect(new Set(calls.map((c) => c.call_id)).size).toBe(3);
    conversation.push(
      ...first.output,
      ...calls.map((c, i) => functionCallOutput(c.call_id, `out${i}`)),
    );
    const second = await client.turn(request(conversation));
    expect(assistantText(second.output)).toBe('out0,out1,out2');
    server.assertNoViolations();
  });

  it('passes reasoning summaries through and accounts cached and reasoning tokens', async () => {
    const server = await serve([
      {
        reasoning: ['Looking at the layout first.'],
        calls: [{ name: 'shell', arguments: { command: 'ls' } }],
        usage: {
          inputTokens: 2000,
          cachedInputTokens: 1536,
          outputTokens: 300,
          reasoningTokens: 256,
        },
      },
      {
        reasoning: 'Done.',
        text: 'Finished.',
        usage: {
          inputTokens: 2100,
          cachedInputTokens: 2048,
          outputTokens: 50,
          reasoningTokens: 20,
        },
      },
    ]);
    const client = clientFor(server, wire);
    const totals = new UsageAccumulator();
    const reasoningDeltas: string[] = [];
    const conversation: ConversationItem[] = [userMessage('Explore.')];
    const first = await client.turn(
      request(conversation, {
        reasoningEffort: 'high',
        reasoningSummary: 'auto',
        onEvent: (e) => {
          if (e.type === 'reasoning_delta') reasoningDeltas.push(e.delta);
        },
      }),
    );
    totals.add(first);
    const reasoning = first.output[0];
    expect(reasoning).toMatchObject({
      type: 'reasoning',
      summary: [{ type: 'summary_text', text: 'Looking at the layout first.' }],
    });
    expect(reasoningDeltas.join('')).toBe('Looking at the layout first.');
    expect(first.usage).toEqual({
      inputTokens: 2000,
      cachedInputTokens: 1536,
      outputTokens: 300,
      reasoningTokens: 256,
    });
    if (wire === 'responses') {
      expect(server.requests[0]!.body).toMatchObject({
        reasoning: { effort: 'high', summary: 'auto' },
        include: ['reasoning.encrypted_content'],
      });
      // Carried so the next stateless turn keeps the model's reasoning.
      expect(reasoning).toHaveProperty('encrypted_content');
    } else {
      expect(server.requests[0]!.body).toMatchObject({ reasoning_effort: 'high' });
    }

    const call = functionCalls(first.output)[0]!;
    conversation.push(...first.output, functionCallOutput(call.call_id, 'src'));
    const second = await client.turn(
      request(conversation, { reasoningEffort: 'high', reasoningSummary: 'auto' }),
    );
    totals.add(second);
    expect(totals.total).toEqual({
      inputTokens: 4100,
      cachedInputTokens: 3584,
      outputTokens: 350,
      reasoningTokens: 276,
    });
    expect(totals.calls).toBe(2);
    if (wire === 'responses') {
      const input = (server.requests[1]!.body as { input: { type: string }[] }).input;
      expect(input.map((i) => i.type)).toEqual([
        'message',
        'reasoning',
        'function_call',
        'function_call_output',
      ]);
    }
    server.assertNoViolations();
  });

  it('tolerates a server that reports no usage', async () => {
    const server = await serve([{ text: 'ok', usage: null }]);
    const result = await clientFor(server, wire).turn(request([userMessage('hi')]));
    expect(result.usageReported).toBe(false);
    expect(result.usage).toEqual({
      inputTokens: 0,
      cachedInputTokens: 0,
      outputTokens: 0,
      reasoningTokens: 0,
    });
    const totals = new UsageAccumulator();
    totals.add(result);
    expect(totals.unreportedCalls).toBe(1);
  });

  it('reports an answer cut by the output token cap as incomplete', async () => {
    const server = await serve([{ text: 'partial', incomplete: 'max_output_tokens' }]);
    const result = await clientFor(server, wire).turn(
      request([userMessage('write a lot')], { maxOutputTokens: 64 }),
    );
    expect(result.status).toBe('incomplete');
    expect(result.incompleteReason).toBe('max_output_tokens');
    expect(assistantText(result.output)).toBe('partial');
  });

  it('retries a 429, honouring retry-after, then succeeds', async () => {
    const server = await serve([
      { text: 'after the limit', faults: [{ type: 'status', status: 429, retryAfter: 1 }] },
    ]);
    const retries: TurnEvent[] = [];
    const started = Date.now();
    const result = await clientFor(server, wire).turn(
      request([userMessage('hi')], { onEvent: (e) => e.type === 'retry' && retries.push(e) }),
    );
    const elapsed = Date.now() - started;
    expect(assistantText(result.output)).toBe('after the limit');
    expect(result.attempts).toBe(2);
    // The backoff alone would be ~5 ms: the wait is the server's one second.
    expect(elapsed).toBeGreaterThanOrEqual(950);
    expect(retries).toEqual([
      {
        type: 'retry',
        attempt: 1,
        maxAttempts: 6,
        delayMs: 1000,
        error: expect.objectContaining({ status: 429, code: 'rate_limit_exceeded' }) as unknown,
      },
    ]);
    expect(server.requests.map((r) => r.status)).toEqual([429, 200]);
    server.assertNoViolations();
  });

  it('gives up on repeated 429s after the configured attempts', async () => {
    const limited = { type: 'status', status: 429, retryAfterMs: 1 } as const;
    const server = await serve([{ text: 'never', faults: [limited, limited, limited, limited] }]);
    const err = await expectModelError(
      clientFor(server, wire, { retry: { maxAttempts: 3 } }).turn(request([userMessage('hi')])),
    );
    expect(err.details).toMatchObject({ status: 429, attempts: 3, retryable: true, wire });
    expect(server.requests).toHaveLength(3);
  });

  it('fails at once when retry-after asks for longer than allowed', async () => {
    const server = await serve([
      { text: 'x', faults: [{ type: 'status', status: 429, retryAfter: 3600 }] },
    ]);
    const started = Date.now();
    const err = await expectModelError(clientFor(server, wire).turn(request([userMessage('hi')])));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err.message).toMatch(/asked to wait 3600 s/);
    expect(server.requests).toHaveLength(1);
  });

  it('does not retry a 429 for an exhausted quota', async () => {
    const server = await serve([
      {
        text: 'x',
        faults: [
          {
            type: 'status',
            status: 429,
            body: {
              error: {
                message: 'You exceeded your current quota.',
                type: 'insufficient_quota',
                code: 'insufficient_quota',
                param: null,
              },
            },
          },
        ],
      },
    ]);
    const err = await expectModelError(clientFor(server, wire).turn(request([userMessage('hi')])));
    expect(err.details).toMatchObject({ status: 429, code: 'insufficient_quota', attempts: 1 });
  });

  it('retries a 500, then succeeds', async () => {
    const server = await serve([
      {
        text: 'recovered',
        faults: [
          { type: 'status', status: 500 },
          { type: 'status', status: 503 },
        ],
      },
    ]);
    const result = await clientFor(server, wire).turn(request([userMessage('hi')]));
    expect(assistantText(result.output)).toBe('recovered');
    expect(result.attempts).toBe(3);
    expect(server.requests.map((r) => r.status)).toEqual([500, 503, 200]);
  });

  it('retries the whole turn when the stream is cut mid-way', async () => {
    const server = await serve([
      {
        text: 'a complete answer this time',
        calls: [{ name: 'shell', arguments: { command: 'make test' } }],
        faults: [{ type: 'cut', afterEvents: 4 }],
      },
    ]);
    const events: TurnEvent[] = [];
    const result = await clientFor(server, wire).turn(
      request([userMessage('hi')], { onEvent: (e) => events.push(e) }),
    );
    expect(result.attempts).toBe(2);
    expect(assistantText(result.output)).toBe('a complete answer this time');
    expect(functionCalls(result.output)).toHaveLength(1);
    const retry = events.find((e) => e.type === 'retry');
    expect(retry).toMatchObject({ attempt: 1, error: { status: undefined } });
    expect(server.requests.map((r) => r.outcome)).toEqual(['fault', 'answered']);
    server.assertNoViolations();
  });

  it('retries an error reported inside the stream', async () => {
    const server = await serve([{ text: 'fine now', faults: [{ type: 'stream_error' }] }]);
    const result = await clientFor(server, wire).turn(request([userMessage('hi')]));
    expect(result.attempts).toBe(2);
    expect(assistantText(result.output)).toBe('fine now');
  });

  it('does not retry an in-stream error that retrying cannot fix', async () => {
    const server = await serve([
      {
        text: 'x',
        faults: [
          {
            type: 'stream_error',
            code: 'context_length_exceeded',
            message: 'Your input exceeds the context window.',
          },
        ],
      },
    ]);
    const err = await expectModelError(clientFor(server, wire).turn(request([userMessage('hi')])));
    expect(err.details).toMatchObject({
      code: 'context_length_exceeded',
      attempts: 1,
      reason: 'stream_error',
    });
  });

  it('abandons and retries a stream that goes silent', async () => {
    const server = await serve([{ text: 'woke up', faults: [{ type: 'stall', afterEvents: 2 }] }]);
    const result = await clientFor(server, wire, { streamIdleTimeoutMs: 200 }).turn(
      request([userMessage('hi')]),
    );
    expect(result.attempts).toBe(2);
    expect(assistantText(result.output)).toBe('woke up');
  });

  it('fails without retrying on malformed stream data', async () => {
    const server = await serve([{ text: 'x', faults: [{ type: 'malformed' }] }]);
    const logged: string[] = [];
    const log = (message: string) => void logged.push(message);
    const logger = { error: log, warn: log, info: log, debug: log };
    const err = await expectModelError(
      clientFor(server, wire, { logger }).turn(request([userMessage('hi')])),
    );
    // The SDK's own complaint goes to the logger we passed, not to the console.
    expect(logged.join('\n')).toMatch(/Could not parse message into JSON/);
    expect(err.details).toMatchObject({ reason: 'malformed_response', attempts: 1 });
  });

  it('ends with model_error carrying the status on a non-retryable 400', async () => {
    const server = await serve([
      {
        text: 'x',
        faults: [
          {
            type: 'status',
            status: 400,
            body: {
              error: {
                message: "Invalid 'input[0]'.",
                type: 'invalid_request_error',
                param: 'input',
                code: 'invalid_value',
              },
            },
          },
        ],
      },
    ]);
    const err = await expectModelError(clientFor(server, wire).turn(request([userMessage('hi')])));
    expect(err.details).toMatchObject({
      status: 400,
      code: 'invalid_value',
      retryable: false,
      attempts: 1,
      wire,
      model: 'scripted-model',
      reason: 'http_status',
    });
    expect(err.message).toContain("Invalid 'input[0]'.");
    expect(server.requests).toHaveLength(1);
  });

  it('rejects promptly with an AbortError when aborted during a slow first byte', async () => {
    const server = await serve([{ text: 'too late', delayMs: 5000 }]);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const started = Date.now();
    const err = await clientFor(server, wire)
      .turn(request([userMessage('hi')], { signal: controller.signal }))
      .catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(AbortError);
    expect(isAbortError(err)).toBe(true);
    // The server sees the connection go, and drops the turn's answer.
    await vi.waitFor(() => expect(server.requests[0]?.outcome).toBe('client_closed'));
  });

  it('rejects promptly when aborted during a backoff sleep', async () => {
    const server = await serve([
      { text: 'x', faults: [{ type: 'status', status: 503, retryAfter: 30 }] },
    ]);
    const controller = new AbortController();
    const reason = new Error('task cancelled');
    const started = Date.now();
    const turn = clientFor(server, wire).turn(
      request([userMessage('hi')], {
        signal: controller.signal,
        onEvent: (e) => {
          if (e.type === 'retry') setTimeout(() => controller.abort(reason), 50);
        },
      }),
    );
    const err = await turn.catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toBe(reason);
  });

  it('does not start when the signal is already aborted', async () => {
    const server = await serve([{ text: 'x' }]);
    const err = await clientFor(server, wire)
      .turn(request([userMessage('hi')], { signal: AbortSignal.abort() }))
      .catch((e: unknown) => e);
    expect(isAbortError(err)).toBe(true);
    expect(server.requests).toHaveLength(0);
  });

  it('lets a listener error end the turn unretried', async () => {
    const server = await serve([{ text: 'some streamed text' }]);
    const boom = new Error('listener failed');
    const err = await clientFor(server, wire)
      .turn(
        request([userMessage('hi')], {
          onEvent: () => {
            throw boom;
          },
        }),
      )
      .catch((e: unknown) => e);
    expect(err).toBe(boom);
    expect(server.requests).toHaveLength(1);
  });

  it('surfaces a malformed conversation as the validator sees it: a call without its output', async () => {
    const server = await serve([{ text: 'unreachable' }]);
    const broken: ConversationItem[] = [
      userMessage('hi'),
      {
        type: 'function_call',
        call_id: 'call_orphan',
        name: 'shell',
        arguments: '{"command":"ls"}',
      },
    ];
    const err = await expectModelError(clientFor(server, wire).turn(request(broken)));
    expect(err.details).toMatchObject({ status: 400, attempts: 1 });
    expect(server.violations).toHaveLength(1);
    expect(server.violations[0]!.message).toMatch(/call_orphan/);
    expect(() => server.assertNoViolations()).toThrow(/call_orphan/);
  });

  it('sends the per-call model and the run cache key', async () => {
    const server = await serve([{ text: 'ok' }]);
    const result = await clientFor(server, wire).turn(
      request([userMessage('hi')], { model: 'other-model', cacheKey: 'task-123' }),
    );
    expect(result.model).toBe('other-model');
    expect(server.requests[0]!.body).toMatchObject({
      model: 'other-model',
      prompt_cache_key: 'task-123',
    });
  });
});

describe('model client configuration', () => {
  it('takes wire, base URL, key and default model from Patchbay config', async () => {
    const server = await serve([{ text: 'configured' }], { apiKey: 'sk-config' });
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-config',
      OPENAI_BASE_URL: server.url,
      PATCHBAY_MODEL: 'local-llama',
      PATCHBAY_MODEL_WIRE: 'chat',
    });
    const client = createModelClient(modelClientOptionsFromConfig(config.model));
    expect(client).toMatchObject({ wire: 'chat', defaultModel: 'local-llama' });
    const result = await client.turn(request([userMessage('hi')]));
    expect(assistantText(result.output)).toBe('configured');
    expect(server.requests[0]).toMatchObject({
      path: '/v1/chat/completions',
      body: { model: 'local-llama' },
    });
  });

  it('sends the configured key and refuses a wrong one as non-retryable', async () => {
    const server = await serve([{ text: 'authorised' }, { text: 'x' }], { apiKey: 'sk-right' });
    const ok = await clientFor(server, 'responses', { apiKey: 'sk-right' }).turn(
      request([userMessage('hi')]),
    );
    expect(assistantText(ok.output)).toBe('authorised');
    const err = await expectModelError(
      clientFor(server, 'responses', { apiKey: 'sk-wrong' }).turn(request([userMessage('hi')])),
    );
    expect(err.details).toMatchObject({ status: 401, attempts: 1 });
  });

  it('retries a refused connection and then reports it', async () => {
    const server = await serve([]);
    const url = server.url;
    await server.close();
    const client = createModelClient({
      model: 'm',
      baseURL: url,
      retry: { maxAttempts: 2, initialDelayMs: 1 },
    });
    const err = await expectModelError(client.turn(request([userMessage('hi')])));
    expect(err.details).toMatchObject({ reason: 'connection', attempts: 2, status: undefined });
  });

  it('suggests the chat wire when a server has no Responses API', async () => {
    const server = await serve([]);
    const client = createModelClient({ model: 'm', baseURL: `${server.url}/missing` });
    const err = await expectModelError(client.turn(request([userMessage('hi')])));
    expect(err.details).toMatchObject({ status: 404, attempts: 1 });
    expect(err.message).toContain('PATCHBAY_MODEL_WIRE=chat');
  });

  it('rejects nonsensical options at construction', () => {
    expect(() => createModelClient({ model: '' })).toThrow(/model/);
    expect(() => createModelClient({ model: 'm', retry: { maxAttempts: 0 } })).toThrow(
      /maxAttempts/,
    );
  });
});

describe('llama.cpp-shaped streams', () => {
  it('reads chat chunks that leave out `usage` and tool-call ids without a call_ prefix', async () => {
    // What llama-server 3.21.1 streams (see test/compat): no `usage` key until the last chunk.
    const { createServer } = await import('node:http');
    const chunk = (body: object) => `data: ${JSON.stringify({ id: 'chatcmpl-1', ...body })}\n\n`;
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end(
        chunk({ choices: [{ index: 0, delta: { role: 'assistant', content: null } }] }) +
          chunk({
            choices: [
              {
                index: 0,
                delta: {
                  tool_calls: [
                    {
                      index: 0,
                      id: 'HdLvEGTNeVrFPQksKFrpsjYnB0KLEL2I',
                      type: 'function',
                      function: { name: 'shell', arguments: '{"command":"echo hi"}' },
                    },
                  ],
                },
              },
            ],
          }) +
          chunk({ choices: [{ index: 0, finish_reason: 'tool_calls', delta: {} }] }) +
          chunk({ choices: [], usage: { completion_tokens: 26, prompt_tokens: 167 } }) +
          'data: [DONE]\n\n',
      );
    });
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const client = createModelClient({
        model: 'tiny',
        wire: 'chat',
        baseURL: `http://127.0.0.1:${port}/v1`,
        retry: { maxAttempts: 1 },
      });
      const turn = await client.turn({ instructions: 'x', input: [userMessage('go')], tools: [] });
      expect(functionCalls(turn.output)).toEqual([
        expect.objectContaining({
          call_id: 'HdLvEGTNeVrFPQksKFrpsjYnB0KLEL2I',
          name: 'shell',
          arguments: '{"command":"echo hi"}',
        }),
      ]);
      expect(turn.usage).toMatchObject({ inputTokens: 167, outputTokens: 26 });
    } finally {
      server.close();
    }
  });
});
