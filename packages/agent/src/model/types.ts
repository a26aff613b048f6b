import { z } from 'zod';

/**
 * The conversation the agent loop keeps and resends each turn. The shapes mirror the Responses
 * API input items (`message`, `function_call`, `function_call_output`, `reasoning`) so the
 * Responses wire sends them almost as they are; the Chat Completions wire translates them. They are
 * zod schemas because a conversation is also read back from storage (event logs, resumed runs)
 * and must be parsed there.
 */
const InputTextPart = z.object({ type: z.literal('input_text'), text: z.string() });
export type InputTextPart = z.infer<typeof InputTextPart>;

const OutputTextPart = z.object({ type: z.literal('output_text'), text: z.string() });
export type OutputTextPart = z.infer<typeof OutputTextPart>;

const RefusalPart = z.object({ type: z.literal('refusal'), refusal: z.string() });
export type RefusalPart = z.infer<typeof RefusalPart>;

export const ContentPart = z.discriminatedUnion('type', [
  InputTextPart,
  OutputTextPart,
  RefusalPart,
]);
export type ContentPart = z.infer<typeof ContentPart>;

const MessageRole = z.enum(['user', 'assistant', 'system', 'developer']);
export type MessageRole = z.infer<typeof MessageRole>;

/** A message: the task prompt (`user`), an assistant answer, or extra instructions. */
export const MessageItem = z.object({
  type: z.literal('message'),
  role: MessageRole,
  content: z.union([z.string(), z.array(ContentPart)]),
  /** The server's item id, kept for logs; never sent back (store:false has nothing to refer to). */
  id: z.string().optional(),
  /** Set by some models on assistant messages (`commentary` preamble vs `final_answer`). */
  phase: z.enum(['commentary', 'final_answer']).optional(),
});
export type MessageItem = z.infer<typeof MessageItem>;

/** A tool call the model made. `arguments` is the raw JSON text; parsing it is the loop's job. */
export const FunctionCallItem = z.object({
  type: z.literal('function_call'),
  call_id: z.string().min(1),
  name: z.string(),
  arguments: z.string(),
  id: z.string().optional(),
});
export type FunctionCallItem = z.infer<typeof FunctionCallItem>;

/** The result of a tool call, paired with its call by `call_id`. */
export const FunctionCallOutputItem = z.object({
  type: z.literal('function_call_output'),
  call_id: z.string().min(1),
  output: z.string(),
});
export type FunctionCallOutputItem = z.infer<typeof FunctionCallOutputItem>;

const SummaryTextPart = z.object({ type: z.literal('summary_text'), text: z.string() });
export type SummaryTextPart = z.infer<typeof SummaryTextPart>;

const ReasoningTextPart = z.object({ type: z.literal('reasoning_text'), text: z.string() });
export type ReasoningTextPart = z.infer<typeof ReasoningTextPart>;

/**
 * The model's reasoning. `summary` is what may be shown; `encrypted_content` is the opaque state
 * that lets a stateless (store:false) conversation carry reasoning into the next turn. On the Chat
 * Completions wire, a server's plain reasoning text (`reasoning_content`) lands in `summary`.
 */
export const ReasoningItem = z.object({
  type: z.literal('reasoning'),
  id: z.string(),
  summary: z.array(SummaryTextPart),
  /** Raw reasoning text some open-weight servers return; kept for logs, never resent. */
  content: z.array(ReasoningTextPart).optional(),
  encrypted_content: z.string().optional(),
});
export type ReasoningItem = z.infer<typeof ReasoningItem>;

export const ConversationItem = z.discriminatedUnion('type', [
  MessageItem,
  FunctionCallItem,
  FunctionCallOutputItem,
  ReasoningItem,
]);
export type ConversationItem = z.infer<typeof ConversationItem>;

/** A function tool offered to the model. */
export interface ToolDefinition {
  /** `^[a-zA-Z0-9_-]{1,64}$`, as the OpenAI API requires. */
  name: string;
  description: string;
  /** JSON Schema of the arguments object. */
  parameters: Record<string, unknown>;
  /**
   * Ask the server to enforce the schema exactly (OpenAI structured outputs). Only schemas with
   * every property required and `additionalProperties: false` qualify.
   * @default false
   */
  strict?: boolean | undefined;
}

/** Which HTTP API a client speaks. */
export const ModelWire = z.enum(['responses', 'chat']);
export type ModelWire = z.infer<typeof ModelWire>;

/** Reasoning effort as the OpenAI API names it; servers that do not reason ignore it. */
export const ReasoningEffort = z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']);
export type ReasoningEffort = z.infer<typeof ReasoningEffort>;

export const ReasoningSummary = z.enum(['auto', 'concise', 'detailed']);
export type ReasoningSummary = z.infer<typeof ReasoningSummary>;

/**
 * Tokens of one model call (or a sum of them). Fields a server does not report count as 0;
 * `reasoningTokens` and `cachedInputTokens` are parts of `outputTokens` and `inputTokens`.
 */
export interface TokenUsage {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

/** A failed attempt as reported in a `retry` event. */
export interface AttemptFailure {
  message: string;
  /** HTTP status, when the server answered with one. */
  status: number | undefined;
  /** The API's error code (`rate_limit_exceeded`, `server_error`, …) when it sent one. */
  code: string | undefined;
}

/**
 * Live progress of a turn, for streaming it to watchers. The result of `turn()` is authoritative:
 * after a `retry` event the deltas of the failed attempt are void and the turn starts over.
 */
export type TurnEvent =
  | { type: 'text_delta'; delta: string }
  | { type: 'reasoning_delta'; delta: string }
  | { type: 'item_done'; item: ConversationItem }
  | {
      type: 'retry';
      /** The attempt that failed, from 1. */
      attempt: number;
      maxAttempts: number;
      delayMs: number;
      error: AttemptFailure;
    };

export interface TurnRequest {
  /** System prompt. Keep it identical across the turns of a run so prompt caching works. */
  instructions: string;
  /** The whole conversation so far; a stateless server sees nothing else. */
  input: readonly ConversationItem[];
  /** Tools offered; keep the list and its order identical across the turns of a run. */
  tools: readonly ToolDefinition[];
  /**
   * Model name for this call.
   * @default the client's default model (`PATCHBAY_MODEL`)
   */
  model?: string | undefined;
  /**
   * Reasoning effort. When this or `reasoningSummary` is set on the Responses wire, encrypted
   * reasoning is requested so reasoning items can be resent.
   * @default unset: the server's default
   */
  reasoningEffort?: ReasoningEffort | undefined;
  /**
   * Reasoning summary detail (Responses wire only).
   * @default unset: no summary
   */
  reasoningSummary?: ReasoningSummary | undefined;
  /**
   * Cap on output tokens (reasoning included).
   * @default unset: the server's limit
   */
  maxOutputTokens?: number | undefined;
  /**
   * Sent as `prompt_cache_key`: requests with the same key are routed to the same cache. Pass the
   * task id. The scripted model server also uses it to tell runs apart.
   * @default unset
   */
  cacheKey?: string | undefined;
  /** Aborting rejects the turn promptly with an {@link AbortError}, also during a backoff sleep. */
  signal?: AbortSignal | undefined;
  /** Live events; a listener that throws ends the turn with its error, unretried. */
  onEvent?: ((event: TurnEvent) => void) | undefined;
}

export interface TurnResult {
  /**
   * What the model produced, in order: reasoning, assistant messages, function calls. Append it
   * to the conversation as is, then one `function_call_output` per function call.
   */
  output: ConversationItem[];
  usage: TokenUsage;
  /** False when the server sent no usage at all (some compatible servers), so `usage` is zeros. */
  usageReported: boolean;
  /** `incomplete` when the server stopped early (output token cap, content filter). */
  status: 'completed' | 'incomplete';
  /** Why the turn is incomplete: `max_output_tokens`, `content_filter`, or the server's word. */
  incompleteReason: string | undefined;
  /** The model that answered, as the server reports it (else the one requested). */
  model: string;
  responseId: string | undefined;
  /** Attempts this turn took, 1 when nothing was retried. */
  attempts: number;
}

/**
 * A provider-neutral model: one call per turn of the agent loop. Implementations retry what
 * retrying can fix (429, 5xx, connection errors, streams cut mid-way) and otherwise reject with
 * `PatchbayError('model_error')`; an aborted signal rejects with {@link AbortError}.
 */
export interface ModelClient {
  readonly wire: ModelWire;
  /** The model used when a turn names none. */
  readonly defaultModel: string;
  turn(request: TurnRequest): Promise<TurnResult>;
}

/** Thrown when the caller's signal aborts a turn; `cause` is the signal's reason. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  constructor(reason?: unknown) {
    super('the model call was aborted', reason === undefined ? undefined : { cause: reason });
  }
}

/**
 * True for {@link AbortError} and any other error named `AbortError` (a `DOMException` from
 * `fetch` or `AbortSignal`, Node's own), so one check covers cancelled model calls and commands.
 */
export function isAbortError(err: unknown): boolean {
  return err instanceof Error && err.name === 'AbortError';
}

/** A user message, the usual start of a conversation. */
export function userMessage(text: string): MessageItem {
  return { type: 'message', role: 'user', content: text };
}

/** The output of a tool call, answering the call with `callId`. */
export function functionCallOutput(callId: string, output: string): FunctionCallOutputItem {
  return { type: 'function_call_output', call_id: callId, output };
}

/** The function calls among a turn's output, in order. */
export function functionCalls(items: readonly ConversationItem[]): FunctionCallItem[] {
  return items.filter((item): item is FunctionCallItem => item.type === 'function_call');
}

/** The text of the assistant messages among `items`, joined by blank lines. */
export function assistantText(items: readonly ConversationItem[]): string {
  return items
    .filter((item): item is MessageItem => item.type === 'message' && item.role === 'assistant')
    .map(messageText)
    .filter((text) => text !== '')
    .join('\n\n');
}

/** The text of one message (refusals included), whatever form its content takes. */
export function messageText(item: MessageItem): string {
  if (typeof item.content === 'string') return item.content;
  return item.content.map((part) => (part.type === 'refusal' ? part.refusal : part.text)).join('');
}

/** The readable text of a reasoning item: its summary, else its raw reasoning text. */
export function reasoningText(item: ReasoningItem): string {
  const summary = item.summary.map((part) => part.text).join('\n\n');
  if (summary !== '') return summary;
  return (item.content ?? []).map((part) => part.text).join('\n\n');
}
