import {
  type ScriptStep,
  type ScriptedModelServer,
  type ScriptedModelServerOptions,
  startScriptedModelServer,
} from './index.js';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';

const servers: ScriptedModelServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(
  script: Iterable<ScriptStep>,
  options: Omit<ScriptedModelServerOptions, 'script'> = {},
) {
  const server = await startScriptedModelServer({ script, ...options });
  servers.push(server);
  return server;
}

async function post(server: ScriptedModelServer, path: string, body: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text };
}

function sseEvents(text: string): { event: string | undefined; data: string }[] {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      const lines = block.split('\n');
      const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
      const data = lines.find((l) => l.startsWith('data: '))?.slice(6) ?? '';
      return { event, data };
    });
}

const tool = {
  type: 'function',
  name: 'shell',
  description: 'run',
  parameters: { type: 'object', properties: { command: { type: 'string' } } },
  strict: false,
};

function responsesBody(input: unknown[], extra: Record<string, unknown> = {}) {
  return {
    model: 'm',
    instructions: 'be good',
    tools: [tool],
    input,
    store: false,
    stream: true,
    ...extra,
  };
}

const user = { type: 'message', role: 'user', content: 'hi' };

describe('scripted model server: the Responses wire', () => {
  it('streams the documented event sequence with usage in response.completed', async () => {
    const server = await serve([
      {
        reasoning: 'thinking',
        text: 'Hello there',
        calls: [{ name: 'shell', arguments: { command: 'ls' } }],
        usage: { inputTokens: 50, cachedInputTokens: 10, outputTokens: 20, reasoningTokens: 5 },
        chunkSize: 4,
      },
    ]);
    const res = await post(
      server,
      '/responses',
      responsesBody([user], { include: ['reasoning.encrypted_content'] }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = sseEvents(res.text);
    const types = events.map((e) => e.event);
    expect(types).toEqual([
      'response.created',
      'response.in_progress',
      'response.output_item.added',
      'response.reasoning_summary_part.added',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.delta',
      'response.reasoning_summary_text.done',
      'response.reasoning_summary_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.content_part.added',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.delta',
      'response.output_text.done',
      'response.content_part.done',
      'response.output_item.done',
      'response.output_item.added',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.delta',
      'response.function_call_arguments.done',
      'response.output_item.done',
      'response.completed',
    ]);
    const data = events.map((e) => JSON.parse(e.data) as Record<string, unknown>);
    // Every event carries its type and a running sequence number.
    expect(data.map((d) => d.sequence_number)).toEqual(data.map((_, i) => i));
    expect(data.map((d) => d.type)).toEqual(types);
    const completed = data.at(-1)!.response as Record<string, unknown>;
    expect(completed).toMatchObject({
      object: 'response',
      status: 'completed',
      store: false,
      usage: {
        input_tokens: 50,
        input_tokens_details: { cached_tokens: 10 },
        output_tokens: 20,
        output_tokens_details: { reasoning_tokens: 5 },
        total_tokens: 70,
      },
    });
    const output = completed.output as Record<string, unknown>[];
    expect(output.map((o) => o.type)).toEqual(['reasoning', 'message', 'function_call']);
    expect(output[0]).toHaveProperty('encrypted_content');
    expect(output[2]).toMatchObject({
      call_id: 'call_0_0',
      name: 'shell',
      arguments: '{"command":"ls"}',
    });
    server.assertNoViolations();
  });

  it('answers non-streaming requests with a Response object', async () => {
    const server = await serve([{ text: 'plain' }]);
    const openai = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
    const response = await openai.responses.create({
      model: 'm',
      input: 'hi',
      store: false,
    });
    expect(response.output_text).toBe('plain');
    expect(response.usage?.input_tokens).toBeGreaterThan(0);
  });

  it('refuses a function_call without its function_call_output, and records why', async () => {
    const server = await serve([{ text: 'never' }]);
    const call = { type: 'function_call', call_id: 'call_1', name: 'shell', arguments: '{}' };
    const res = await post(server, '/responses', responsesBody([user, call]));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({
      error: {
        message: 'No tool output found for function call call_1.',
        type: 'invalid_request_error',
      },
    });
    expect(server.violations).toEqual([
      { request: 0, status: 400, message: 'No tool output found for function call call_1.' },
    ]);
    expect(server.requests[0]).toMatchObject({
      outcome: 'rejected',
      status: 400,
      wire: 'responses',
    });
    expect(() => server.assertNoViolations()).toThrow(
      /request #0 \(HTTP 400\): No tool output found/,
    );
    // The turn is still there for a correct request.
    expect(server.turnsPlayed).toBe(0);
  });

  it.each([
    [
      'an output for an unknown call',
      responsesBody([user, { type: 'function_call_output', call_id: 'call_x', output: 'ok' }]),
      'No tool call found for function call output with call_id call_x.',
    ],
    [
      'store left to its default',
      responsesBody([user], { store: undefined }),
      "'store' must be false",
    ],
    ['store: true', responsesBody([user], { store: true }), "'store' must be false"],
    [
      'a missing model',
      responsesBody([user], { model: undefined }),
      "Missing required parameter: 'model'.",
    ],
    [
      'tools that are not an array',
      responsesBody([user], { tools: 'shell' }),
      "Invalid type for 'tools'",
    ],
    [
      'an unknown parameter',
      responsesBody([user], { temprature: 1 }),
      "Unknown parameter: 'temprature'.",
    ],
    [
      'an item referenced by id under store:false',
      responsesBody([user, { type: 'item_reference', id: 'msg_1' }]),
      "Item with id 'msg_1' not found",
    ],
    [
      'reasoning with encrypted content the server never issued',
      responsesBody([user, { type: 'reasoning', summary: [], encrypted_content: 'forged' }]),
      'could not be verified',
    ],
    [
      'input_text in an assistant message',
      responsesBody([
        { type: 'message', role: 'assistant', content: [{ type: 'input_text', text: 'x' }] },
      ]),
      "Invalid value: 'input_text'",
    ],
    [
      'duplicate tool names',
      responsesBody([user], { tools: [tool, tool] }),
      "duplicate tool name 'shell'",
    ],
    [
      'a strict tool whose schema is not closed',
      responsesBody([user], { tools: [{ ...tool, strict: true }] }),
      "Invalid schema for function 'shell'",
    ],
    [
      'a function_call with non-string arguments',
      responsesBody([
        user,
        { type: 'function_call', call_id: 'c', name: 'shell', arguments: { command: 'ls' } },
        { type: 'function_call_output', call_id: 'c', output: 'ok' },
      ]),
      "Invalid type for 'input[1].arguments'",
    ],
  ])('refuses %s', async (_name, body, message) => {
    const server = await serve([{ text: 'never' }]);
    const res = await post(server, '/responses', body);
    expect([400, 404]).toContain(res.status);
    expect(res.text).toContain(message);
    expect(server.violations).toHaveLength(1);
    expect(server.violations[0]!.message).toContain(message);
  });

  it('refuses a body that is not JSON', async () => {
    const server = await serve([{ text: 'never' }]);
    const res = await post(server, '/responses', '{"model": ');
    expect(res.status).toBe(400);
    expect(server.requests[0]!.body).toBe('{"model": ');
    expect(server.violations).toHaveLength(1);
  });

  it('holds instructions and tools steady within a run, and tells runs apart by prompt_cache_key', async () => {
    const server = await serve([
      { text: 'one' },
      { text: 'two' },
      { text: 'three' },
      { text: 'four' },
    ]);
    expect((await post(server, '/responses', responsesBody([user]))).status).toBe(200);
    const changed = await post(
      server,
      '/responses',
      responsesBody([user], { instructions: 'be bad' }),
    );
    expect(changed.status).toBe(400);
    expect(changed.text).toContain('instructions changed');
    const retooled = await post(
      server,
      '/responses',
      responsesBody([user], { tools: [{ ...tool, description: 'other' }] }),
    );
    expect(retooled.text).toContain('tools changed');
    // Another run may have other instructions.
    const other = await post(
      server,
      '/responses',
      responsesBody([user], { instructions: 'be bad', prompt_cache_key: 'task-2' }),
    );
    expect(other.status).toBe(200);
    expect(server.violations).toHaveLength(2);
  });

  it('checks that a run only appends to its conversation and resends what the model produced', async () => {
    const server = await serve([
      { text: 'calling', calls: [{ name: 'shell', arguments: { command: 'ls' } }] },
      { text: 'done' },
      { text: 'spare' },
    ]);
    expect((await post(server, '/responses', responsesBody([user]))).status).toBe(200);
    const call = {
      type: 'function_call',
      call_id: 'call_0_0',
      name: 'shell',
      arguments: '{"command":"ls"}',
    };
    const output = { type: 'function_call_output', call_id: 'call_0_0', output: 'a' };
    const said = {
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'calling' }],
    };

    const rewritten = await post(
      server,
      '/responses',
      responsesBody([{ ...user, content: 'changed' }, said, call, output]),
    );
    expect(rewritten.text).toContain('item 0 of the previous request was changed or dropped');
    const forgotText = await post(server, '/responses', responsesBody([user, call, output]));
    expect(forgotText.text).toContain("previous answer's assistant message is missing");
    expect(
      (await post(server, '/responses', responsesBody([user, said, call, output]))).status,
    ).toBe(200);
    expect(server.violations).toHaveLength(2);
  });

  it('lets the request after a compaction turn start the conversation over', async () => {
    const server = await serve([
      { text: 'one' },
      { text: 'summary', compacts: true },
      { text: 'three' },
    ]);
    const said = (text: string) => ({
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_text', text }],
    });
    const ask = (content: string) => ({ type: 'message', role: 'user', content });
    expect((await post(server, '/responses', responsesBody([user]))).status).toBe(200);
    const compaction = responsesBody([user, said('one'), ask('summarise')]);
    expect((await post(server, '/responses', compaction)).status).toBe(200);
    const compacted = responsesBody([ask('summary of before'), ask('go on')]);
    expect((await post(server, '/responses', compacted)).status).toBe(200);
    server.assertNoViolations();
  });

  it('answers with a clear error once the script runs out', async () => {
    const server = await serve([{ text: 'only one' }]);
    expect((await post(server, '/responses', responsesBody([user]))).status).toBe(200);
    const said = {
      type: 'message',
      role: 'assistant',
      content: [{ type: 'output_text', text: 'only one' }],
    };
    const res = await post(server, '/responses', responsesBody([user, said, user]));
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toMatchObject({ error: { code: 'script_exhausted' } });
    expect(server.violations[0]!.message).toMatch(/no turn left for request #1 \(1 turns played\)/);
  });

  it('plays script functions against the request, and endless generator scripts', async () => {
    function* forever(): Generator<ScriptStep> {
      for (let i = 0; ; i++)
        yield { calls: [{ name: 'shell', arguments: { command: `echo ${i}` } }] };
    }
    const server = await serve(forever());
    const openai = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
    const input: Record<string, unknown>[] = [user];
    for (let turn = 0; turn < 25; turn++) {
      const response = await openai.responses.create({
        model: 'm',
        instructions: 'x',
        input: input as never,
        store: false,
      });
      const call = response.output[0] as { call_id: string; name: string; arguments: string };
      expect(JSON.parse(call.arguments)).toEqual({ command: `echo ${turn}` });
      input.push(
        {
          type: 'function_call',
          call_id: call.call_id,
          name: call.name,
          arguments: call.arguments,
        },
        { type: 'function_call_output', call_id: call.call_id, output: `${turn}` },
      );
    }
    expect(server.turnsPlayed).toBe(25);
    server.assertNoViolations();

    const reacting = await serve([
      { calls: [{ name: 'shell', arguments: { command: 'npm test' } }] },
      (req) =>
        req.lastToolOutput?.includes('FAIL')
          ? { text: `fixing after ${req.toolOutputs[0]!.name}` }
          : { text: 'all green' },
    ]);
    await post(reacting, '/responses', responsesBody([user]));
    const call = {
      type: 'function_call',
      call_id: 'call_0_0',
      name: 'shell',
      arguments: '{"command":"npm test"}',
    };
    const res = await post(
      reacting,
      '/responses',
      responsesBody(
        [user, call, { type: 'function_call_output', call_id: 'call_0_0', output: '1 FAIL' }],
        {
          stream: false,
        },
      ),
    );
    expect(JSON.parse(res.text)).toMatchObject({
      output: [{ type: 'message', content: [{ text: 'fixing after shell' }] }],
    });
  });

  it('records a throwing script function as a violation', async () => {
    const server = await serve([
      () => {
        throw new Error('test bug');
      },
    ]);
    const res = await post(server, '/responses', responsesBody([user]));
    expect(res.status).toBe(400);
    expect(server.violations[0]!.message).toContain('test bug');
  });
});

describe('scripted model server: the Chat Completions wire', () => {
  const chatTool = {
    type: 'function',
    function: { name: 'shell', parameters: { type: 'object' } },
  };
  const system = { role: 'system', content: 'be good' };

  it('streams chunks with tool calls, then usage, then [DONE]', async () => {
    const server = await serve([
      { text: 'ok', calls: [{ name: 'shell', arguments: { command: 'ls' } }], chunkSize: 100 },
    ]);
    const res = await post(server, '/chat/completions', {
      model: 'm',
      messages: [system, { role: 'user', content: 'hi' }],
      tools: [chatTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const events = sseEvents(res.text);
    expect(events.at(-1)!.data).toBe('[DONE]');
    interface Chunk {
      object: string;
      choices: { delta: Record<string, unknown>; finish_reason: string | null }[];
    }
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.data) as Chunk);
    expect(chunks.every((c) => c.object === 'chat.completion.chunk')).toBe(true);
    const choices = chunks.flatMap((c) => c.choices);
    const deltas = choices.map((c) => c.delta);
    expect(deltas).toContainEqual({ content: 'ok' });
    expect(deltas).toContainEqual({
      tool_calls: [
        { index: 0, id: 'call_0_0', type: 'function', function: { name: 'shell', arguments: '' } },
      ],
    });
    expect(choices.at(-1)?.finish_reason).toBe('tool_calls');
    expect(chunks.at(-1)).toMatchObject({
      choices: [],
      usage: { prompt_tokens: expect.any(Number) },
    });
  });

  it('answers non-streaming chat completions', async () => {
    const server = await serve([{ text: 'plain chat' }]);
    const openai = new OpenAI({ apiKey: 'k', baseURL: server.url, maxRetries: 0 });
    const completion = await openai.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(completion.choices[0]?.message.content).toBe('plain chat');
    expect(completion.choices[0]?.finish_reason).toBe('stop');
  });

  it.each([
    [
      'tool calls without tool messages',
      [
        system,
        { role: 'user', content: 'hi' },
        {
          role: 'assistant',
          content: null,
          tool_calls: [
            { id: 'c1', type: 'function', function: { name: 'shell', arguments: '{}' } },
          ],
        },
        { role: 'user', content: 'and?' },
      ],
      'The following tool_call_ids did not have response messages: c1',
    ],
    [
      'a tool message without a preceding call',
      [system, { role: 'user', content: 'hi' }, { role: 'tool', tool_call_id: 'c9', content: 'x' }],
      "messages with role 'tool' must be a response to a preceeding message with 'tool_calls'",
    ],
    [
      'an assistant message with neither content nor calls',
      [system, { role: 'assistant', content: null }],
      "Invalid value for 'content'",
    ],
  ])('refuses %s', async (_name, messages, message) => {
    const server = await serve([{ text: 'never' }]);
    const res = await post(server, '/chat/completions', {
      model: 'm',
      messages,
      tools: [chatTool],
    });
    expect(res.status).toBe(400);
    expect(res.text).toContain(message);
    expect(server.violations).toHaveLength(1);
  });

  it('refuses stream_options without streaming and an empty tools array', async () => {
    const server = await serve([{ text: 'never' }]);
    const a = await post(server, '/chat/completions', {
      model: 'm',
      messages: [system],
      stream_options: { include_usage: true },
    });
    expect(a.text).toContain("'stream_options' parameter is only allowed when 'stream' is enabled");
    const b = await post(server, '/chat/completions', {
      model: 'm',
      messages: [system],
      tools: [],
    });
    expect(b.text).toContain("Invalid value for 'tools'");
    expect(server.violations).toHaveLength(2);
  });
});

describe('scripted model server: faults and lifecycle', () => {
  it('sends 429 with retry-after, then the answer', async () => {
    const server = await serve([
      { text: 'ok', faults: [{ type: 'status', status: 429, retryAfter: 2, retryAfterMs: 1500 }] },
    ]);
    const first = await post(server, '/responses', responsesBody([user]));
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('2');
    expect(first.headers.get('retry-after-ms')).toBe('1500');
    expect(JSON.parse(first.text)).toMatchObject({ error: { code: 'rate_limit_exceeded' } });
    const second = await post(server, '/responses', responsesBody([user]));
    expect(second.status).toBe(200);
    expect(server.requests.map((r) => [r.outcome, r.fault, r.turn])).toEqual([
      ['fault', 'status', 0],
      ['answered', undefined, 0],
    ]);
  });

  it('cuts a stream after some events', async () => {
    const server = await serve([
      { text: 'a long answer indeed', faults: [{ type: 'cut', afterEvents: 3 }] },
    ]);
    const res = await fetch(`${server.url}/responses`, {
      method: 'POST',
      body: JSON.stringify(responsesBody([user])),
    });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
  });

  it('sends malformed data when asked', async () => {
    const server = await serve([{ text: 'x', faults: [{ type: 'malformed' }] }]);
    const res = await post(server, '/responses', responsesBody([user]));
    const events = sseEvents(res.text);
    expect(events).toHaveLength(2);
    expect(() => JSON.parse(events[1]!.data) as unknown).toThrow();
  });

  it('closes cleanly while a request is stalled, and close is idempotent', async () => {
    const server = await serve([{ text: 'x', faults: [{ type: 'stall' }] }]);
    const pending = fetch(`${server.url}/responses`, {
      method: 'POST',
      body: JSON.stringify(responsesBody([user])),
    }).catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    await Promise.all([server.close(), server.close()]);
    await server.close();
    expect(await pending).toBeInstanceOf(Error);
  });

  it('is exported as @patchbay/agent/testing for other packages and benchmarks', async () => {
    const exported = await import('@patchbay/agent/testing');
    expect(exported.startScriptedModelServer).toBe(startScriptedModelServer);
  });

  it('listens on loopback only, on a random port', async () => {
    const a = await serve([]);
    const b = await serve([]);
    expect(a.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
    expect(a.port).not.toBe(b.port);
  });

  it('answers unknown routes with 404 and records it', async () => {
    const server = await serve([]);
    const res = await post(server, '/embeddings', { model: 'm', input: 'x' });
    expect(res.status).toBe(404);
    expect(server.violations).toHaveLength(1);
  });
});
