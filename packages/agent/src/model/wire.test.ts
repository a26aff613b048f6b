import { describe, expect, it } from 'vitest';
import { buildChatBody, toChatMessages } from './chat-wire.js';
import {
  buildResponsesBody,
  fromResponsesItem,
  fromResponsesUsage,
  toResponsesInput,
} from './responses-wire.js';
import { ConversationItem, type TurnRequest, userMessage } from './types.js';

const conversation: ConversationItem[] = [
  userMessage('Fix the test.'),
  {
    type: 'reasoning',
    id: 'rs_1',
    summary: [{ type: 'summary_text', text: 'Look first.' }],
    encrypted_content: 'enc_1',
  },
  {
    type: 'message',
    role: 'assistant',
    id: 'msg_1',
    content: [{ type: 'output_text', text: 'Looking.' }],
    phase: 'commentary',
  },
  {
    type: 'function_call',
    id: 'fc_1',
    call_id: 'call_a',
    name: 'shell',
    arguments: '{"command":"ls"}',
  },
  {
    type: 'function_call',
    id: 'fc_2',
    call_id: 'call_b',
    name: 'shell',
    arguments: '{"command":"pwd"}',
  },
  { type: 'function_call_output', call_id: 'call_a', output: 'src' },
  { type: 'function_call_output', call_id: 'call_b', output: '/workspace' },
  { type: 'reasoning', id: 'rs_2', summary: [] },
  { type: 'function_call', call_id: 'call_c', name: 'shell', arguments: '{}' },
  { type: 'function_call_output', call_id: 'call_c', output: 'ok' },
];

describe('the Responses wire translation', () => {
  it('sends items without ids and drops reasoning it cannot resend', () => {
    expect(toResponsesInput(conversation)).toEqual([
      { type: 'message', role: 'user', content: 'Fix the test.' },
      {
        type: 'reasoning',
        summary: [{ type: 'summary_text', text: 'Look first.' }],
        encrypted_content: 'enc_1',
      },
      {
        type: 'message',
        role: 'assistant',
        content: [{ type: 'output_text', text: 'Looking.' }],
        phase: 'commentary',
      },
      { type: 'function_call', call_id: 'call_a', name: 'shell', arguments: '{"command":"ls"}' },
      { type: 'function_call', call_id: 'call_b', name: 'shell', arguments: '{"command":"pwd"}' },
      { type: 'function_call_output', call_id: 'call_a', output: 'src' },
      { type: 'function_call_output', call_id: 'call_b', output: '/workspace' },
      { type: 'function_call', call_id: 'call_c', name: 'shell', arguments: '{}' },
      { type: 'function_call_output', call_id: 'call_c', output: 'ok' },
    ]);
  });

  it('builds a stateless, cache-friendly body and asks for encrypted reasoning only with reasoning', () => {
    const request: TurnRequest = {
      instructions: 'sys',
      input: [userMessage('hi')],
      tools: [{ name: 'shell', description: 'd', parameters: { type: 'object' } }],
    };
    const plain = buildResponsesBody(request, 'gpt-x');
    expect(Object.keys(plain).slice(0, 3)).toEqual(['model', 'instructions', 'tools']);
    expect(plain).toMatchObject({ store: false, stream: true });
    expect(plain.tools).toEqual([
      {
        type: 'function',
        name: 'shell',
        description: 'd',
        parameters: { type: 'object' },
        strict: false,
      },
    ]);
    expect(plain).not.toHaveProperty('include');
    expect(plain).not.toHaveProperty('reasoning');
    const reasoning = buildResponsesBody({ ...request, reasoningEffort: 'low' }, 'gpt-x');
    expect(reasoning).toMatchObject({
      reasoning: { effort: 'low' },
      include: ['reasoning.encrypted_content'],
    });
    expect(buildResponsesBody({ ...request, tools: [] }, 'm')).not.toHaveProperty('tools');
  });

  it('reads output items leniently, and ignores item types it did not ask for', () => {
    expect(
      fromResponsesItem({ type: 'function_call', name: 'shell', arguments: '{}', id: 'fc_9' }, '0'),
    ).toEqual({
      type: 'function_call',
      call_id: 'fc_9',
      name: 'shell',
      arguments: '{}',
      id: 'fc_9',
    });
    expect(fromResponsesItem({ type: 'web_search_call', id: 'ws_1' }, '0')).toBeUndefined();
    expect(
      fromResponsesItem(
        {
          type: 'reasoning',
          id: 'rs',
          summary: [],
          content: [{ type: 'reasoning_text', text: 'raw' }],
        },
        '0',
      ),
    ).toEqual({
      type: 'reasoning',
      id: 'rs',
      summary: [],
      content: [{ type: 'reasoning_text', text: 'raw' }],
    });
    expect(() => fromResponsesItem({ type: 'function_call', arguments: '{}' }, '0')).toThrow(
      /malformed/,
    );
  });

  it('counts missing usage fields as zero', () => {
    expect(fromResponsesUsage({ input_tokens: 10, output_tokens: 3 })).toEqual({
      usage: { inputTokens: 10, cachedInputTokens: 0, outputTokens: 3, reasoningTokens: 0 },
      usageReported: true,
    });
    expect(fromResponsesUsage(null).usageReported).toBe(false);
  });

  it('parses a stored conversation with the ConversationItem schema', () => {
    const stored: unknown = JSON.parse(JSON.stringify(conversation));
    expect(ConversationItem.array().parse(stored)).toEqual(conversation);
    expect(
      ConversationItem.safeParse({ type: 'function_call', call_id: '', name: 'x', arguments: '' })
        .success,
    ).toBe(false);
  });
});

describe('the Chat Completions wire translation', () => {
  it('merges assistant text and its calls, answers with tool messages, and drops reasoning', () => {
    expect(toChatMessages('sys', conversation)).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'user', content: 'Fix the test.' },
      {
        role: 'assistant',
        content: 'Looking.',
        tool_calls: [
          {
            id: 'call_a',
            type: 'function',
            function: { name: 'shell', arguments: '{"command":"ls"}' },
          },
          {
            id: 'call_b',
            type: 'function',
            function: { name: 'shell', arguments: '{"command":"pwd"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: 'src' },
      { role: 'tool', tool_call_id: 'call_b', content: '/workspace' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_c', type: 'function', function: { name: 'shell', arguments: '{}' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_c', content: 'ok' },
    ]);
  });

  it('keeps consecutive assistant messages apart and maps developer messages to system', () => {
    expect(
      toChatMessages('sys', [
        { type: 'message', role: 'developer', content: [{ type: 'input_text', text: 'rules' }] },
        { type: 'message', role: 'assistant', content: 'one' },
        { type: 'message', role: 'assistant', content: [{ type: 'refusal', refusal: 'no' }] },
      ]),
    ).toEqual([
      { role: 'system', content: 'sys' },
      { role: 'system', content: 'rules' },
      { role: 'assistant', content: 'one' },
      { role: 'assistant', content: 'no' },
    ]);
  });

  it('asks for usage in the stream and leaves out what compatible servers reject', () => {
    const body = buildChatBody({ instructions: 's', input: [], tools: [] }, 'llama');
    expect(body).toEqual({
      model: 'llama',
      messages: [{ role: 'system', content: 's' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const strict = buildChatBody(
      {
        instructions: 's',
        input: [],
        tools: [{ name: 't', description: 'd', parameters: {}, strict: true }],
        reasoningEffort: 'medium',
        maxOutputTokens: 100,
      },
      'm',
    );
    expect(strict).toMatchObject({
      tools: [{ type: 'function', function: { name: 't', strict: true } }],
      reasoning_effort: 'medium',
      max_completion_tokens: 100,
    });
  });
});
