import type OpenAI from 'openai';
import type {
  ChatCompletionAssistantMessageParam,
  ChatCompletionCreateParamsStreaming,
  ChatCompletionFunctionTool,
  ChatCompletionMessageFunctionToolCall,
  ChatCompletionMessageParam,
} from 'openai/resources/chat/completions';
import { z } from 'zod';
import { type AttemptContext, AttemptError, failure, toAttemptError } from './retry.js';
import {
  type ConversationItem,
  type ToolDefinition,
  type TurnEvent,
  type TurnRequest,
  type TurnResult,
  messageText,
} from './types.js';
import { emptyUsage } from './usage.js';

/**
 * Translates the conversation into chat messages: the instructions become the first `system`
 * message; an assistant message and the function calls after it merge into one assistant message
 * with `tool_calls`; each output becomes a `role: 'tool'` message. Reasoning items are dropped:
 * Chat Completions has no field to send them back in.
 */
export function toChatMessages(
  instructions: string,
  items: readonly ConversationItem[],
): ChatCompletionMessageParam[] {
  // `system` rather than `developer`: compatible servers do not all know the newer role.
  const messages: ChatCompletionMessageParam[] = [{ role: 'system', content: instructions }];
  let assistant: { content: string | null; calls: ChatCompletionMessageFunctionToolCall[] } | null =
    null;
  const flush = () => {
    if (assistant === null) return;
    const message: ChatCompletionAssistantMessageParam = { role: 'assistant' };
    // The API wants content or tool_calls; null content is only valid next to tool calls.
    message.content = assistant.content ?? (assistant.calls.length > 0 ? null : '');
    if (assistant.calls.length > 0) message.tool_calls = assistant.calls;
    messages.push(message);
    assistant = null;
  };
  for (const item of items) {
    switch (item.type) {
      case 'message':
        flush();
        if (item.role === 'assistant') {
          assistant = { content: messageText(item), calls: [] };
        } else {
          messages.push({
            role: item.role === 'user' ? 'user' : 'system',
            content: messageText(item),
          });
        }
        break;
      case 'function_call':
        assistant ??= { content: null, calls: [] };
        assistant.calls.push({
          id: item.call_id,
          type: 'function',
          function: { name: item.name, arguments: item.arguments },
        });
        break;
      case 'function_call_output':
        flush();
        messages.push({ role: 'tool', tool_call_id: item.call_id, content: item.output });
        break;
      case 'reasoning':
        break;
    }
  }
  flush();
  return messages;
}

function toChatTools(tools: readonly ToolDefinition[]): ChatCompletionFunctionTool[] {
  return tools.map((tool) => ({
    type: 'function',
    function: {
      name: tool.name,
      description: tool.description,
      parameters: tool.parameters,
      // Sent only when asked for: several compatible servers reject the field.
      ...(tool.strict ? { strict: true } : {}),
    },
  }));
}

export function buildChatBody(
  request: TurnRequest,
  model: string,
): ChatCompletionCreateParamsStreaming {
  return {
    model,
    messages: toChatMessages(request.instructions, request.input),
    // The official API rejects an empty tools array.
    ...(request.tools.length > 0 ? { tools: toChatTools(request.tools) } : {}),
    stream: true,
    // Without it a streamed chat completion reports no usage at all.
    stream_options: { include_usage: true },
    ...(request.reasoningEffort === undefined ? {} : { reasoning_effort: request.reasoningEffort }),
    ...(request.maxOutputTokens === undefined
      ? {}
      : { max_completion_tokens: request.maxOutputTokens }),
    ...(request.cacheKey === undefined ? {} : { prompt_cache_key: request.cacheKey }),
  };
}

// Chunks are parsed leniently: servers differ in which fields they fill and where.
const ChatUsage = z.looseObject({
  prompt_tokens: z.number().nullish(),
  completion_tokens: z.number().nullish(),
  prompt_tokens_details: z.looseObject({ cached_tokens: z.number().nullish() }).nullish(),
  completion_tokens_details: z.looseObject({ reasoning_tokens: z.number().nullish() }).nullish(),
});

const ToolCallDelta = z.looseObject({
  index: z.number().nullish(),
  id: z.string().nullish(),
  function: z
    .looseObject({ name: z.string().nullish(), arguments: z.string().nullish() })
    .nullish(),
});

const ChatChunk = z.looseObject({
  id: z.string().nullish(),
  model: z.string().nullish(),
  choices: z
    .array(
      z.looseObject({
        index: z.number().nullish(),
        delta: z
          .looseObject({
            content: z.string().nullish(),
            refusal: z.string().nullish(),
            // vLLM, DeepSeek and LM Studio say `reasoning_content`; Ollama and newer vLLM `reasoning`.
            reasoning_content: z.string().nullish(),
            reasoning: z.string().nullish(),
            tool_calls: z.array(ToolCallDelta).nullish(),
          })
          .nullish(),
        finish_reason: z.string().nullish(),
      }),
    )
    .nullish(),
  // OpenAI sends `usage: null` on every chunk but the last; llama.cpp leaves the key out.
  usage: z.unknown().optional(),
});

function fromChatUsage(raw: unknown): Pick<TurnResult, 'usage' | 'usageReported'> {
  const parsed = ChatUsage.safeParse(raw);
  if (!parsed.success) return { usage: emptyUsage(), usageReported: false };
  const u = parsed.data;
  return {
    usage: {
      inputTokens: u.prompt_tokens ?? 0,
      cachedInputTokens: u.prompt_tokens_details?.cached_tokens ?? 0,
      outputTokens: u.completion_tokens ?? 0,
      reasoningTokens: u.completion_tokens_details?.reasoning_tokens ?? 0,
    },
    usageReported: true,
  };
}

interface PendingCall {
  id: string | undefined;
  name: string;
  arguments: string;
}

/**
 * One attempt at a turn over Chat Completions: streams the chunks and assembles reasoning, text
 * and tool calls (which arrive as fragments keyed by `index`) into conversation items.
 */
export async function chatAttempt(
  openai: OpenAI,
  body: ChatCompletionCreateParamsStreaming,
  emit: (event: TurnEvent) => void,
  ctx: AttemptContext,
): Promise<Omit<TurnResult, 'attempts'>> {
  let stream: AsyncIterable<unknown>;
  try {
    stream = await openai.chat.completions.create(body, { signal: ctx.signal, maxRetries: 0 });
  } catch (err) {
    throw toAttemptError(err, 'request');
  }

  let responseId: string | undefined;
  let model: string | undefined;
  let text = '';
  let reasoning = '';
  let finishReason: string | undefined;
  let usage: Pick<TurnResult, 'usage' | 'usageReported'> = {
    usage: emptyUsage(),
    usageReported: false,
  };
  const calls = new Map<number, PendingCall>();
  let lastCall = -1;

  const iterator = stream[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw toAttemptError(err, 'stream');
      }
      if (next.done) break;
      ctx.heartbeat();
      const chunk = ChatChunk.safeParse(next.value);
      if (!chunk.success) {
        throw new AttemptError(
          failure('malformed_response', `malformed chunk: ${z.prettifyError(chunk.error)}`),
        );
      }
      responseId ??= chunk.data.id ?? undefined;
      model ??= chunk.data.model ?? undefined;
      if (chunk.data.usage != null) usage = fromChatUsage(chunk.data.usage);
      // n is 1: only the first choice exists.
      const choice = chunk.data.choices?.find((c) => (c.index ?? 0) === 0);
      if (!choice) continue;
      const delta = choice.delta;
      const thought = delta?.reasoning_content ?? delta?.reasoning;
      if (thought) {
        reasoning += thought;
        emit({ type: 'reasoning_delta', delta: thought });
      }
      const content = (delta?.content ?? '') + (delta?.refusal ?? '');
      if (content !== '') {
        text += content;
        emit({ type: 'text_delta', delta: content });
      }
      for (const fragment of delta?.tool_calls ?? []) {
        // Most servers key fragments by index; some send whole calls without one.
        let index = fragment.index ?? undefined;
        if (index === undefined) {
          const known = [...calls.entries()].find(([, c]) => fragment.id && c.id === fragment.id);
          const startsCall = Boolean(fragment.id) || lastCall < 0;
          index = known ? known[0] : startsCall ? lastCall + 1 : lastCall;
        }
        lastCall = Math.max(lastCall, index);
        const call = calls.get(index) ?? { id: undefined, name: '', arguments: '' };
        if (fragment.id) call.id = fragment.id;
        if (fragment.function?.name) call.name += fragment.function.name;
        if (fragment.function?.arguments) call.arguments += fragment.function.arguments;
        calls.set(index, call);
      }
      if (choice.finish_reason) finishReason = choice.finish_reason;
    }
  } finally {
    await iterator.return?.();
  }

  if (finishReason === undefined) {
    throw new AttemptError(
      failure('stream_ended_early', 'the stream ended before the completion finished', {
        retryable: true,
      }),
    );
  }
  const base = responseId ?? 'chat';
  const output: ConversationItem[] = [];
  if (reasoning !== '') {
    output.push({
      type: 'reasoning',
      id: `rs_${base}`,
      summary: [{ type: 'summary_text', text: reasoning }],
    });
  }
  if (text !== '') {
    output.push({ type: 'message', role: 'assistant', content: [{ type: 'output_text', text }] });
  }
  for (const [index, call] of [...calls.entries()].sort(([a], [b]) => a - b)) {
    output.push({
      type: 'function_call',
      // A server that names no id still needs one for pairing the output with the call.
      call_id: call.id ?? `call_${base}_${index}`,
      name: call.name,
      arguments: call.arguments,
    });
  }
  for (const item of output) emit({ type: 'item_done', item });
  const incompleteReason =
    finishReason === 'length'
      ? 'max_output_tokens'
      : finishReason === 'content_filter'
        ? 'content_filter'
        : undefined;
  return {
    output,
    ...usage,
    status: incompleteReason === undefined ? 'completed' : 'incomplete',
    incompleteReason,
    model: model ?? body.model,
    responseId,
  };
}
