import type OpenAI from 'openai';
import type {
  FunctionTool,
  ResponseCreateParamsStreaming,
  ResponseInputItem,
} from 'openai/resources/responses/responses';
import { z } from 'zod';
import {
  type AttemptContext,
  AttemptError,
  failure,
  streamErrorFailure,
  toAttemptError,
} from './retry.js';
import type {
  ConversationItem,
  ContentPart,
  MessageItem,
  ReasoningItem,
  ToolDefinition,
  TurnEvent,
  TurnRequest,
  TurnResult,
} from './types.js';
import { emptyUsage } from './usage.js';

/**
 * One input item as this wire sends it. Ids are left out on purpose: with `store: false` the
 * server keeps nothing an id could refer to and answers 404 ("Items are not persisted when
 * `store` is set to false"); reasoning travels by its encrypted content instead.
 */
type WireInputItem =
  | { type: 'message'; role: 'user' | 'system' | 'developer'; content: string | WirePart[] }
  | {
      type: 'message';
      role: 'assistant';
      content: WirePart[];
      phase?: 'commentary' | 'final_answer';
    }
  | { type: 'function_call'; call_id: string; name: string; arguments: string }
  | { type: 'function_call_output'; call_id: string; output: string }
  | {
      type: 'reasoning';
      summary: { type: 'summary_text'; text: string }[];
      encrypted_content: string;
    };

type WirePart =
  | { type: 'input_text'; text: string }
  | { type: 'output_text'; text: string }
  | { type: 'refusal'; refusal: string };

/** Serialises the conversation for `POST /v1/responses`, in order. */
export function toResponsesInput(items: readonly ConversationItem[]): WireInputItem[] {
  const out: WireInputItem[] = [];
  for (const item of items) {
    switch (item.type) {
      case 'message':
        out.push(messageToWire(item));
        break;
      case 'function_call':
        out.push({
          type: 'function_call',
          call_id: item.call_id,
          name: item.name,
          arguments: item.arguments,
        });
        break;
      case 'function_call_output':
        out.push({ type: 'function_call_output', call_id: item.call_id, output: item.output });
        break;
      case 'reasoning':
        // Without encrypted content a stateless server cannot use a reasoning item and the real
        // API rejects it; dropping it only costs the model its earlier chain of thought.
        if (item.encrypted_content !== undefined) {
          out.push({
            type: 'reasoning',
            summary: item.summary,
            encrypted_content: item.encrypted_content,
          });
        }
        break;
    }
  }
  return out;
}

function messageToWire(item: MessageItem): WireInputItem {
  if (item.role === 'assistant') {
    // Assistant turns go back as output_text parts, the shape the API itself returned.
    const parts: WirePart[] =
      typeof item.content === 'string'
        ? [{ type: 'output_text', text: item.content }]
        : item.content.map((part) =>
            part.type === 'refusal' ? part : { type: 'output_text', text: part.text },
          );
    return {
      type: 'message',
      role: 'assistant',
      content: parts,
      ...(item.phase === undefined ? {} : { phase: item.phase }),
    };
  }
  const content: string | WirePart[] =
    typeof item.content === 'string'
      ? item.content
      : item.content.map((part) =>
          part.type === 'input_text'
            ? part
            : { type: 'input_text', text: part.type === 'refusal' ? part.refusal : part.text },
        );
  return { type: 'message', role: item.role, content };
}

function toResponsesTools(tools: readonly ToolDefinition[]): FunctionTool[] {
  return tools.map((tool) => ({
    type: 'function',
    name: tool.name,
    description: tool.description,
    parameters: tool.parameters,
    // The API treats a missing `strict` as true, which most hand-written schemas cannot meet.
    strict: tool.strict ?? false,
  }));
}

/** The request body of one turn; identical on every retry of it. */
export function buildResponsesBody(
  request: TurnRequest,
  model: string,
): ResponseCreateParamsStreaming {
  const reasoning = request.reasoningEffort !== undefined || request.reasoningSummary !== undefined;
  return {
    model,
    // Instructions and tools come first and never change within a run, so the provider's prompt
    // cache can reuse everything up to the newest items.
    instructions: request.instructions,
    ...(request.tools.length > 0 ? { tools: toResponsesTools(request.tools) } : {}),
    // The SDK's input types demand ids that a store:false request must not carry (see above).
    input: toResponsesInput(request.input) as unknown as ResponseInputItem[],
    store: false,
    stream: true,
    ...(reasoning
      ? {
          reasoning: {
            ...(request.reasoningEffort === undefined ? {} : { effort: request.reasoningEffort }),
            ...(request.reasoningSummary === undefined
              ? {}
              : { summary: request.reasoningSummary }),
          },
          // Stateless reasoning: the only way to carry it into the next turn.
          include: ['reasoning.encrypted_content' as const],
        }
      : {}),
    ...(request.maxOutputTokens === undefined
      ? {}
      : { max_output_tokens: request.maxOutputTokens }),
    ...(request.cacheKey === undefined ? {} : { prompt_cache_key: request.cacheKey }),
  };
}

// Stream data is parsed leniently: compatible servers omit fields the official API always sends.
const WireUsage = z.looseObject({
  input_tokens: z.number().nullish(),
  output_tokens: z.number().nullish(),
  input_tokens_details: z.looseObject({ cached_tokens: z.number().nullish() }).nullish(),
  output_tokens_details: z.looseObject({ reasoning_tokens: z.number().nullish() }).nullish(),
});

const WireMessage = z.looseObject({
  type: z.literal('message'),
  id: z.string().nullish(),
  content: z
    .array(
      z.looseObject({
        type: z.string(),
        text: z.string().nullish(),
        refusal: z.string().nullish(),
      }),
    )
    .nullish(),
  phase: z.enum(['commentary', 'final_answer']).nullish().catch(undefined),
});

const WireFunctionCall = z.looseObject({
  type: z.literal('function_call'),
  id: z.string().nullish(),
  call_id: z.string().nullish(),
  name: z.string(),
  arguments: z.string().nullish(),
});

const WireReasoning = z.looseObject({
  type: z.literal('reasoning'),
  id: z.string().nullish(),
  summary: z.array(z.looseObject({ text: z.string() })).nullish(),
  content: z.array(z.looseObject({ text: z.string() })).nullish(),
  encrypted_content: z.string().nullish(),
});

const WireOutputItem = z.discriminatedUnion('type', [WireMessage, WireFunctionCall, WireReasoning]);
const KNOWN_ITEM_TYPES = new Set(['message', 'function_call', 'reasoning']);

const WireResponse = z.looseObject({
  id: z.string().nullish(),
  model: z.string().nullish(),
  status: z.string().nullish(),
  output: z.array(z.unknown()).nullish(),
  usage: z.unknown().optional(),
  incomplete_details: z.looseObject({ reason: z.string().nullish() }).nullish(),
  error: z.looseObject({ code: z.string().nullish(), message: z.string().nullish() }).nullish(),
});
type WireResponse = z.infer<typeof WireResponse>;

const Event = z.looseObject({ type: z.string() });
const Delta = z.looseObject({ delta: z.string() });
const ItemDone = z.looseObject({ output_index: z.number().nullish(), item: z.unknown() });
const ArgumentsDelta = z.looseObject({ item_id: z.string().nullish(), delta: z.string() });
const ArgumentsDone = z.looseObject({ item_id: z.string().nullish(), arguments: z.string() });
const Terminal = z.looseObject({ response: WireResponse });
const ErrorEvent = z.looseObject({
  code: z.string().nullish(),
  message: z.string().nullish(),
});

/** Converts one output item; undefined for item types a function-tool agent never asked for. */
export function fromResponsesItem(raw: unknown, fallbackId: string): ConversationItem | undefined {
  const type = Event.safeParse(raw);
  if (!type.success || !KNOWN_ITEM_TYPES.has(type.data.type)) return undefined;
  const parsed = WireOutputItem.safeParse(raw);
  if (!parsed.success) {
    throw new AttemptError(
      failure(
        'malformed_response',
        `the server sent a malformed ${type.data.type} item: ${z.prettifyError(parsed.error)}`,
      ),
    );
  }
  const item = parsed.data;
  switch (item.type) {
    case 'message': {
      const content: ContentPart[] = [];
      for (const part of item.content ?? []) {
        if (part.type === 'refusal' && typeof part.refusal === 'string') {
          content.push({ type: 'refusal', refusal: part.refusal });
        } else if (typeof part.text === 'string') {
          content.push({ type: 'output_text', text: part.text });
        }
      }
      return {
        type: 'message',
        role: 'assistant',
        content,
        ...(item.id ? { id: item.id } : {}),
        ...(item.phase ? { phase: item.phase } : {}),
      };
    }
    case 'function_call':
      return {
        type: 'function_call',
        call_id: item.call_id || item.id || `call_${fallbackId}`,
        name: item.name,
        arguments: item.arguments ?? '',
        ...(item.id ? { id: item.id } : {}),
      };
    case 'reasoning': {
      const reasoning: ReasoningItem = {
        type: 'reasoning',
        id: item.id || `rs_${fallbackId}`,
        summary: (item.summary ?? []).map((part) => ({ type: 'summary_text', text: part.text })),
      };
      if (item.content && item.content.length > 0) {
        reasoning.content = item.content.map((part) => ({
          type: 'reasoning_text',
          text: part.text,
        }));
      }
      if (item.encrypted_content) reasoning.encrypted_content = item.encrypted_content;
      return reasoning;
    }
  }
}

/** Usage of a Responses API body, and whether the server reported any. */
export function fromResponsesUsage(raw: unknown): Pick<TurnResult, 'usage' | 'usageReported'> {
  const parsed = WireUsage.safeParse(raw);
  if (!parsed.success) return { usage: emptyUsage(), usageReported: false };
  const u = parsed.data;
  return {
    usage: {
      inputTokens: u.input_tokens ?? 0,
      cachedInputTokens: u.input_tokens_details?.cached_tokens ?? 0,
      outputTokens: u.output_tokens ?? 0,
      reasoningTokens: u.output_tokens_details?.reasoning_tokens ?? 0,
    },
    usageReported: true,
  };
}

/**
 * One attempt at a turn over the Responses API: streams the response and collects the finished
 * output items. Throws {@link AttemptError} for anything the retry policy must judge.
 */
export async function responsesAttempt(
  openai: OpenAI,
  body: ResponseCreateParamsStreaming,
  emit: (event: TurnEvent) => void,
  ctx: AttemptContext,
): Promise<Omit<TurnResult, 'attempts'>> {
  let stream: AsyncIterable<unknown>;
  try {
    stream = await openai.responses.create(body, { signal: ctx.signal, maxRetries: 0 });
  } catch (err) {
    throw toAttemptError(err, 'request');
  }

  const items = new Map<number, ConversationItem>();
  const argumentsByItem = new Map<string, string>();
  let terminal: { response: WireResponse; incomplete: boolean } | undefined;
  const iterator = stream[Symbol.asyncIterator]();
  try {
    while (terminal === undefined) {
      let next: IteratorResult<unknown>;
      try {
        next = await iterator.next();
      } catch (err) {
        throw toAttemptError(err, 'stream');
      }
      if (next.done) break;
      ctx.heartbeat();
      const event = Event.safeParse(next.value);
      if (!event.success) continue;
      const data = next.value;
      switch (event.data.type) {
        case 'response.output_text.delta':
        case 'response.refusal.delta': {
          const delta = Delta.safeParse(data);
          if (delta.success) emit({ type: 'text_delta', delta: delta.data.delta });
          break;
        }
        case 'response.reasoning_summary_text.delta':
        case 'response.reasoning_text.delta': {
          const delta = Delta.safeParse(data);
          if (delta.success) emit({ type: 'reasoning_delta', delta: delta.data.delta });
          break;
        }
        case 'response.function_call_arguments.delta': {
          const delta = ArgumentsDelta.safeParse(data);
          if (delta.success && delta.data.item_id) {
            const id = delta.data.item_id;
            argumentsByItem.set(id, (argumentsByItem.get(id) ?? '') + delta.data.delta);
          }
          break;
        }
        case 'response.function_call_arguments.done': {
          const done = ArgumentsDone.safeParse(data);
          if (done.success && done.data.item_id) {
            argumentsByItem.set(done.data.item_id, done.data.arguments);
          }
          break;
        }
        case 'response.output_item.done': {
          const done = ItemDone.safeParse(data);
          if (!done.success) break;
          const index = done.data.output_index ?? items.size;
          const item = fromResponsesItem(done.data.item, `${index}`);
          if (item === undefined) break;
          // Some compatible servers only send the arguments in the argument events.
          if (item.type === 'function_call' && item.arguments === '' && item.id !== undefined) {
            item.arguments = argumentsByItem.get(item.id) ?? '';
          }
          items.set(index, item);
          emit({ type: 'item_done', item });
          break;
        }
        case 'response.completed':
        case 'response.incomplete': {
          const parsed = Terminal.safeParse(data);
          if (!parsed.success) {
            throw new AttemptError(
              failure('malformed_response', `malformed ${event.data.type} event`),
            );
          }
          terminal = {
            response: parsed.data.response,
            incomplete:
              event.data.type === 'response.incomplete' ||
              parsed.data.response.status === 'incomplete',
          };
          break;
        }
        case 'response.failed': {
          const parsed = Terminal.safeParse(data);
          const error = parsed.success ? parsed.data.response.error : undefined;
          throw new AttemptError(
            streamErrorFailure(error?.code, error?.message ?? 'the response failed'),
          );
        }
        case 'error': {
          const parsed = ErrorEvent.safeParse(data);
          const error = parsed.success ? parsed.data : undefined;
          throw new AttemptError(
            streamErrorFailure(error?.code, error?.message ?? 'the server reported an error'),
          );
        }
      }
    }
  } finally {
    // Leaving early (a failure event, a throwing listener) must not leave the request open.
    await iterator.return?.();
  }

  if (terminal === undefined) {
    throw new AttemptError(
      failure('stream_ended_early', 'the stream ended before the response completed', {
        retryable: true,
      }),
    );
  }
  const response = terminal.response;
  let output = [...items.entries()].sort(([a], [b]) => a - b).map(([, item]) => item);
  if (output.length === 0 && response.output) {
    // A server that streams no item events may still list the output in the final response.
    output = response.output
      .map((raw, index) => fromResponsesItem(raw, `${index}`))
      .filter((item): item is ConversationItem => item !== undefined);
  }
  return {
    output,
    ...fromResponsesUsage(response.usage),
    status: terminal.incomplete ? 'incomplete' : 'completed',
    incompleteReason: terminal.incomplete
      ? (response.incomplete_details?.reason ?? 'unknown')
      : undefined,
    model: response.model ?? body.model ?? '',
    responseId: response.id ?? undefined,
  };
}
