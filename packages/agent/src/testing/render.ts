import type { ParsedRequest } from './requests.js';

/**
 * Renders a planned answer the way the real APIs send it: the Responses API's typed SSE events
 * (`event: <type>` + `data: <json>`, no `[DONE]`) and JSON body, and Chat Completions' chunks
 * (`data: <json>` … `data: [DONE]`) and JSON body.
 */

/** A turn with every id, count and flag decided. */
export interface PlannedAnswer {
  responseId: string;
  model: string;
  createdAt: number;
  reasoning: { id: string; summary: string[]; encryptedContent: string | undefined } | undefined;
  message: { id: string; text: string } | undefined;
  calls: { id: string; callId: string; name: string; arguments: string }[];
  usage: {
    inputTokens: number;
    cachedInputTokens: number;
    outputTokens: number;
    reasoningTokens: number;
  } | null;
  incomplete: 'max_output_tokens' | 'content_filter' | undefined;
  chunkSize: number;
}

export interface SseEvent {
  /** Responses events name their type; chat chunks have none. */
  event: string | undefined;
  /** Serialised as JSON, except a string, sent as is (`[DONE]`, malformed data). */
  data: unknown;
}

export function encodeSse(event: SseEvent): string {
  const data = typeof event.data === 'string' ? event.data : JSON.stringify(event.data);
  return `${event.event === undefined ? '' : `event: ${event.event}\n`}data: ${data}\n\n`;
}

function chunks(text: string, size: number): string[] {
  if (text === '') return [];
  const out: string[] = [];
  for (let i = 0; i < text.length; i += size) out.push(text.slice(i, i + size));
  return out;
}

// ---------------------------------------------------------------- Responses API

function reasoningItem(answer: PlannedAnswer): Record<string, unknown> | undefined {
  const r = answer.reasoning;
  if (!r) return undefined;
  return {
    id: r.id,
    type: 'reasoning',
    summary: r.summary.map((text) => ({ type: 'summary_text', text })),
    ...(r.encryptedContent === undefined ? {} : { encrypted_content: r.encryptedContent }),
  };
}

function messageItem(answer: PlannedAnswer, status: string): Record<string, unknown> | undefined {
  const m = answer.message;
  if (!m) return undefined;
  return {
    id: m.id,
    type: 'message',
    status,
    role: 'assistant',
    content: [{ type: 'output_text', text: m.text, annotations: [], logprobs: [] }],
  };
}

function callItems(answer: PlannedAnswer, status: string): Record<string, unknown>[] {
  return answer.calls.map((c) => ({
    id: c.id,
    type: 'function_call',
    status,
    arguments: c.arguments,
    call_id: c.callId,
    name: c.name,
  }));
}

function responsesUsage(answer: PlannedAnswer): Record<string, unknown> | null {
  const u = answer.usage;
  if (!u) return null;
  return {
    input_tokens: u.inputTokens,
    input_tokens_details: { cached_tokens: u.cachedInputTokens },
    output_tokens: u.outputTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens },
    total_tokens: u.inputTokens + u.outputTokens,
  };
}

/** The Response object, as in `response.created` (in progress) or the final event and body. */
export function responseObject(
  answer: PlannedAnswer,
  request: ParsedRequest,
  phase: 'in_progress' | 'final',
): Record<string, unknown> {
  const body = request.body;
  const final = phase === 'final';
  const itemStatus = answer.incomplete ? 'incomplete' : 'completed';
  const output = final
    ? [
        reasoningItem(answer),
        messageItem(answer, itemStatus),
        ...callItems(answer, 'completed'),
      ].filter((item) => item !== undefined)
    : [];
  const reasoning = (body.reasoning ?? {}) as Record<string, unknown>;
  return {
    id: answer.responseId,
    object: 'response',
    created_at: answer.createdAt,
    status: final ? (answer.incomplete ? 'incomplete' : 'completed') : 'in_progress',
    background: false,
    error: null,
    incomplete_details: final && answer.incomplete ? { reason: answer.incomplete } : null,
    instructions: body.instructions ?? null,
    max_output_tokens: body.max_output_tokens ?? null,
    max_tool_calls: null,
    model: answer.model,
    output,
    parallel_tool_calls: body.parallel_tool_calls ?? true,
    previous_response_id: null,
    prompt_cache_key: body.prompt_cache_key ?? null,
    reasoning: { effort: reasoning.effort ?? null, summary: reasoning.summary ?? null },
    safety_identifier: null,
    service_tier: 'default',
    store: false,
    temperature: 1,
    text: { format: { type: 'text' }, verbosity: 'medium' },
    tool_choice: body.tool_choice ?? 'auto',
    tools: body.tools ?? [],
    top_logprobs: 0,
    top_p: 1,
    truncation: 'disabled',
    usage: final ? responsesUsage(answer) : null,
    user: null,
    metadata: {},
  };
}

/** The event sequence of a streamed response, `sequence_number` included. */
export function responsesEvents(answer: PlannedAnswer, request: ParsedRequest): SseEvent[] {
  const events: { type: string; [key: string]: unknown }[] = [];
  const inProgress = responseObject(answer, request, 'in_progress');
  events.push({ type: 'response.created', response: inProgress });
  events.push({ type: 'response.in_progress', response: inProgress });
  let index = 0;

  const reasoning = answer.reasoning;
  if (reasoning) {
    const output_index = index++;
    const item_id = reasoning.id;
    events.push({
      type: 'response.output_item.added',
      output_index,
      item: { id: item_id, type: 'reasoning', summary: [] },
    });
    for (const [summary_index, text] of reasoning.summary.entries()) {
      const where = { item_id, output_index, summary_index };
      events.push({
        type: 'response.reasoning_summary_part.added',
        ...where,
        part: { type: 'summary_text', text: '' },
      });
      for (const delta of chunks(text, answer.chunkSize)) {
        events.push({ type: 'response.reasoning_summary_text.delta', ...where, delta });
      }
      events.push({ type: 'response.reasoning_summary_text.done', ...where, text });
      events.push({
        type: 'response.reasoning_summary_part.done',
        ...where,
        part: { type: 'summary_text', text },
      });
    }
    events.push({ type: 'response.output_item.done', output_index, item: reasoningItem(answer) });
  }

  const message = answer.message;
  if (message) {
    const output_index = index++;
    const where = { item_id: message.id, output_index, content_index: 0 };
    events.push({
      type: 'response.output_item.added',
      output_index,
      // An item just added has no content parts yet.
      item: {
        id: message.id,
        type: 'message',
        status: 'in_progress',
        role: 'assistant',
        content: [],
      },
    });
    events.push({
      type: 'response.content_part.added',
      ...where,
      part: { type: 'output_text', text: '', annotations: [], logprobs: [] },
    });
    for (const delta of chunks(message.text, answer.chunkSize)) {
      events.push({ type: 'response.output_text.delta', ...where, delta, logprobs: [] });
    }
    events.push({ type: 'response.output_text.done', ...where, text: message.text, logprobs: [] });
    events.push({
      type: 'response.content_part.done',
      ...where,
      part: { type: 'output_text', text: message.text, annotations: [], logprobs: [] },
    });
    events.push({
      type: 'response.output_item.done',
      output_index,
      item: messageItem(answer, answer.incomplete ? 'incomplete' : 'completed'),
    });
  }

  for (const [i, call] of answer.calls.entries()) {
    const output_index = index++;
    const done = callItems(answer, 'completed')[i];
    events.push({
      type: 'response.output_item.added',
      output_index,
      item: { ...done, status: 'in_progress', arguments: '' },
    });
    for (const delta of chunks(call.arguments, answer.chunkSize)) {
      events.push({
        type: 'response.function_call_arguments.delta',
        item_id: call.id,
        output_index,
        delta,
      });
    }
    events.push({
      type: 'response.function_call_arguments.done',
      item_id: call.id,
      output_index,
      name: call.name,
      arguments: call.arguments,
    });
    events.push({ type: 'response.output_item.done', output_index, item: done });
  }

  events.push({
    type: answer.incomplete ? 'response.incomplete' : 'response.completed',
    response: responseObject(answer, request, 'final'),
  });
  return events.map((data, sequence_number) => ({
    event: data.type,
    data: { ...data, sequence_number },
  }));
}

/** A `response.failed` stream: the API's way of failing after the 200 was sent. */
export function responsesFailedEvents(
  answer: PlannedAnswer,
  request: ParsedRequest,
  code: string | null,
  message: string,
): SseEvent[] {
  const inProgress = responseObject(answer, request, 'in_progress');
  const failed = { ...inProgress, status: 'failed', error: { code, message } };
  return [
    { type: 'response.created', response: inProgress },
    { type: 'response.in_progress', response: inProgress },
    { type: 'response.failed', response: failed },
  ].map((data, sequence_number) => ({ event: data.type, data: { ...data, sequence_number } }));
}

// ---------------------------------------------------------------- Chat Completions

function chatUsage(answer: PlannedAnswer): Record<string, unknown> | null {
  const u = answer.usage;
  if (!u) return null;
  return {
    prompt_tokens: u.inputTokens,
    completion_tokens: u.outputTokens,
    total_tokens: u.inputTokens + u.outputTokens,
    prompt_tokens_details: { cached_tokens: u.cachedInputTokens, audio_tokens: 0 },
    completion_tokens_details: {
      reasoning_tokens: u.reasoningTokens,
      audio_tokens: 0,
      accepted_prediction_tokens: 0,
      rejected_prediction_tokens: 0,
    },
  };
}

function finishReason(answer: PlannedAnswer): string {
  if (answer.incomplete === 'max_output_tokens') return 'length';
  if (answer.incomplete === 'content_filter') return 'content_filter';
  return answer.calls.length > 0 ? 'tool_calls' : 'stop';
}

/** The reasoning text as compatible servers stream it (`reasoning_content`). */
function chatReasoning(answer: PlannedAnswer): string {
  return answer.reasoning?.summary.join('\n\n') ?? '';
}

export function chatChunks(answer: PlannedAnswer, request: ParsedRequest): SseEvent[] {
  const base = {
    id: answer.responseId,
    object: 'chat.completion.chunk',
    created: answer.createdAt,
    model: answer.model,
    system_fingerprint: null,
    service_tier: 'default',
    // The real API puts `usage: null` on every chunk once usage was asked for.
    ...(request.includeUsage ? { usage: null } : {}),
  };
  const chunk = (delta: Record<string, unknown>, finish: string | null = null) => ({
    event: undefined,
    data: { ...base, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] },
  });
  const out: SseEvent[] = [chunk({ role: 'assistant', content: '', refusal: null })];
  for (const piece of chunks(chatReasoning(answer), answer.chunkSize)) {
    out.push(chunk({ reasoning_content: piece }));
  }
  for (const piece of chunks(answer.message?.text ?? '', answer.chunkSize)) {
    out.push(chunk({ content: piece }));
  }
  for (const [index, call] of answer.calls.entries()) {
    out.push(
      chunk({
        tool_calls: [
          {
            index,
            id: call.callId,
            type: 'function',
            function: { name: call.name, arguments: '' },
          },
        ],
      }),
    );
    for (const piece of chunks(call.arguments, answer.chunkSize)) {
      out.push(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }));
    }
  }
  out.push(chunk({}, finishReason(answer)));
  const usage = chatUsage(answer);
  if (request.includeUsage && usage) {
    out.push({ event: undefined, data: { ...base, choices: [], usage } });
  }
  out.push({ event: undefined, data: '[DONE]' });
  return out;
}

export function chatCompletion(answer: PlannedAnswer): Record<string, unknown> {
  const reasoning = chatReasoning(answer);
  return {
    id: answer.responseId,
    object: 'chat.completion',
    created: answer.createdAt,
    model: answer.model,
    system_fingerprint: null,
    service_tier: 'default',
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: answer.message?.text ?? null,
          refusal: null,
          annotations: [],
          ...(reasoning === '' ? {} : { reasoning_content: reasoning }),
          ...(answer.calls.length > 0
            ? {
                tool_calls: answer.calls.map((c) => ({
                  id: c.callId,
                  type: 'function',
                  function: { name: c.name, arguments: c.arguments },
                })),
              }
            : {}),
        },
        logprobs: null,
        finish_reason: finishReason(answer),
      },
    ],
    ...(answer.usage ? { usage: chatUsage(answer) } : {}),
  };
}

/** A 200 stream that fails midway, the way Chat Completions reports it. */
export function chatErrorChunks(
  answer: PlannedAnswer,
  request: ParsedRequest,
  code: string | null,
  message: string,
): SseEvent[] {
  const first = chatChunks(
    { ...answer, reasoning: undefined, message: undefined, calls: [] },
    request,
  )[0];
  return [
    ...(first ? [first] : []),
    { event: undefined, data: { error: { message, type: 'server_error', param: null, code } } },
  ];
}
