import { type ScriptedModelServer, startScriptedModelServer } from '@patchbay/agent/testing';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { ModelGateway } from './gateway.js';

const UPSTREAM_KEY = 'sk-upstream-key-never-in-a-sandbox';

let model: ScriptedModelServer | undefined;
let gateway: ModelGateway | undefined;

afterEach(async () => {
  await gateway?.close();
  await model?.close();
  gateway = model = undefined;
});

async function start(
  script: Parameters<typeof startScriptedModelServer>[0]['script'],
): Promise<{ model: ScriptedModelServer; gateway: ModelGateway }> {
  model = await startScriptedModelServer({ script, apiKey: UPSTREAM_KEY, appendOnly: false });
  gateway = await ModelGateway.start({
    upstream: { baseUrl: model.url, apiKey: UPSTREAM_KEY },
    host: '127.0.0.1',
  });
  return { model, gateway };
}

const client = (gw: ModelGateway, token: string) =>
  new OpenAI({ baseURL: gw.url, apiKey: token, maxRetries: 0 });

const ask = (gw: ModelGateway, token: string, text = 'hello') =>
  client(gw, token).responses.create({
    model: 'gpt-5-codex',
    input: text,
    store: false,
    stream: true,
  });

async function drain(stream: AsyncIterable<{ type: string }>): Promise<string[]> {
  const types: string[] = [];
  for await (const event of stream) types.push(event.type);
  return types;
}

describe('ModelGateway', () => {
  it('forwards a streamed answer with the real key and counts its usage against the task', async () => {
    const { model, gateway } = await start([
      { text: 'Hi there.', usage: { inputTokens: 120, cachedInputTokens: 20, outputTokens: 7 } },
      {
        text: 'Again.',
        usage: { inputTokens: 130, cachedInputTokens: 0, outputTokens: 3, reasoningTokens: 1 },
      },
    ]);
    const grant = gateway.grant('task-1', { maxTokens: 100_000, maxTurns: 10 });
    const types = await drain(await ask(gateway, grant.token));
    expect(types.at(0)).toBe('response.created');
    expect(types.at(-1)).toBe('response.completed');
    await drain(await ask(gateway, grant.token));
    // What the model server saw: the real key, never the task's token.
    expect(model.requests.map((r) => r.headers.authorization)).toEqual([
      `Bearer ${UPSTREAM_KEY}`,
      `Bearer ${UPSTREAM_KEY}`,
    ]);
    expect(grant.usage()).toMatchObject({
      inputTokens: 250,
      cachedInputTokens: 20,
      outputTokens: 10,
      reasoningTokens: 1,
      modelCalls: 2,
    });
  });

  it('counts Chat Completions too, streamed or not', async () => {
    const { gateway } = await start([
      { text: 'one', usage: { inputTokens: 10, outputTokens: 2 } },
      { text: 'two', usage: { inputTokens: 11, outputTokens: 3 } },
    ]);
    const grant = gateway.grant('task-c', { maxTokens: 100_000, maxTurns: 10 });
    const chat = client(gateway, grant.token).chat.completions;
    const plain = await chat.create({ model: 'm', messages: [{ role: 'user', content: 'a' }] });
    expect(plain.choices[0]!.message.content).toBe('one');
    const stream = await chat.create({
      model: 'm',
      messages: [{ role: 'user', content: 'b' }],
      stream: true,
    });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('two');
    expect(grant.usage()).toMatchObject({ inputTokens: 21, outputTokens: 5, modelCalls: 2 });
  });

  it("refuses a token it does not know, another task's revoked token, and anything but the model routes", async () => {
    const { gateway, model } = await start([{ text: 'for a' }, { text: 'for b' }]);
    const a = gateway.grant('task-a', { maxTokens: 100_000, maxTurns: 10 });
    const b = gateway.grant('task-b', { maxTokens: 100_000, maxTurns: 10 });
    await drain(await ask(gateway, a.token));
    await expect(ask(gateway, UPSTREAM_KEY)).rejects.toMatchObject({
      status: 401,
      code: 'invalid_api_key',
    });
    b.revoke();
    await expect(ask(gateway, b.token)).rejects.toMatchObject({ status: 401 });
    // Task a's usage is its own: b's refused calls cost nothing, and reached nothing.
    expect(a.usage().modelCalls).toBe(1);
    expect(b.usage().modelCalls).toBe(0);
    expect(model.requests).toHaveLength(1);
    for (const [method, path] of [
      ['GET', '/v1/files'],
      ['POST', '/v1/embeddings'],
      ['GET', '/v1/responses'],
      ['GET', '/admin'],
    ] as const) {
      const res = await fetch(`${gateway.url.replace(/\/v1$/, '')}${path}`, {
        method,
        headers: { authorization: `Bearer ${a.token}` },
      });
      expect(res.status, `${method} ${path}`).toBeGreaterThanOrEqual(404);
      await res.arrayBuffer();
    }
    expect(model.requests).toHaveLength(1);
  });

  it('answers 429 budget_exhausted once a budget is spent, and cuts calls in flight when one spends it', async () => {
    // An upstream that streams a "slow" answer for as long as it is read, and answers "fast" at
    // once with a usage that spends the budget: the scripted server answers one turn at a time.
    const upstream = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        const send = (event: object): boolean =>
          res.write(
            `event: ${(event as { type: string }).type}\ndata: ${JSON.stringify(event)}\n\n`,
          );
        const response = { id: 'resp_1', object: 'response', status: 'in_progress', output: [] };
        send({ type: 'response.created', sequence_number: 0, response });
        if (body.includes('slow')) {
          const timer = setInterval(
            () => send({ type: 'response.in_progress', sequence_number: 1, response }),
            50,
          );
          res.once('close', () => clearInterval(timer));
          return;
        }
        send({
          type: 'response.completed',
          sequence_number: 1,
          response: {
            ...response,
            status: 'completed',
            usage: { input_tokens: 900, output_tokens: 200 },
          },
        });
        res.end();
      });
    });
    upstream.listen(0, '127.0.0.1');
    await once(upstream, 'listening');
    try {
      gateway = await ModelGateway.start({
        upstream: {
          baseUrl: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}/v1`,
          apiKey: UPSTREAM_KEY,
        },
        host: '127.0.0.1',
      });
      const grant = gateway.grant('task-b', { maxTokens: 1000, maxTurns: 10 });
      const slow = ask(gateway, grant.token, 'slow').then(drain);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await drain(await ask(gateway, grant.token, 'fast'));
      await expect(slow).rejects.toThrow();
      expect(grant.exhausted()).toBe('max_tokens');
      await expect(ask(gateway, grant.token)).rejects.toMatchObject({
        status: 429,
        code: 'budget_exhausted',
      });
      expect(grant.usage()).toMatchObject({ inputTokens: 900, outputTokens: 200, modelCalls: 1 });
    } finally {
      upstream.closeAllConnections();
      upstream.close();
    }
  });

  it('stops at the budget of model calls', async () => {
    const { gateway } = await start([{ text: 'one' }, { text: 'two' }]);
    const grant = gateway.grant('task-t', { maxTokens: 1_000_000, maxTurns: 1 });
    await drain(await ask(gateway, grant.token));
    await expect(ask(gateway, grant.token)).rejects.toMatchObject({ status: 429 });
    expect(grant.exhausted()).toBe('max_turns');
  });

  it('passes a cut upstream stream on as a broken answer, never as a complete one', async () => {
    const { gateway } = await start([
      { text: 'a long answer '.repeat(50), faults: [{ type: 'cut', afterEvents: 3 }] },
    ]);
    const grant = gateway.grant('task-x', { maxTokens: 100_000, maxTurns: 10 });
    const stream = await ask(gateway, grant.token);
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const event of stream) seen.push(event.type);
      })(),
    ).rejects.toThrow();
    expect(seen).not.toContain('response.completed');
    expect(grant.usage().modelCalls).toBe(0);
  });

  it('forwards /v1/models', async () => {
    const { gateway } = await start([]);
    const grant = gateway.grant('task-m', { maxTokens: 1000, maxTurns: 1 });
    const res = await fetch(`${gateway.url}/models`, {
      headers: { authorization: `Bearer ${grant.token}` },
    });
    expect(res.status).toBeLessThan(500);
    await res.arrayBuffer();
    expect(grant.usage().modelCalls).toBe(0);
  });
});
