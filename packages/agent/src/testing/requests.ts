import { z } from 'zod';
import type { ScriptItem, Wire } from './script.js';

/**
 * Request validation of the scripted model server. Two layers: what the real OpenAI API rejects
 * (unknown parameters, missing `model`, wrong types, a `function_call` without its output, an
 * output for an unknown call, items referenced by id under `store: false`, …), with its error
 * wording where it is known; and Patchbay's own invariants (`store: false`, no duplicate tools),
 * marked as such in the message.
 */

/** A request that passed validation, reduced to what the server needs. */
export interface ParsedRequest {
  wire: Wire;
  model: string;
  stream: boolean;
  instructions: string | undefined;
  /** Canonical JSON of the tools, to check they stay the same within a run. */
  toolsKey: string;
  toolNames: string[];
  /** The raw conversation (input items or messages), to check it only grows within a run. */
  conversation: unknown[];
  items: ScriptItem[];
  /** `prompt_cache_key`, or `default`: requests with the same key are one run. */
  runKey: string;
  /** Responses: `include` asked for encrypted reasoning. */
  includeEncrypted: boolean;
  /** Chat: `stream_options.include_usage`; always true on the Responses wire. */
  includeUsage: boolean;
  body: Record<string, unknown>;
}

export type ParseResult =
  | { ok: true; request: ParsedRequest }
  | { ok: false; status: number; message: string; param?: string | undefined };

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const ReasoningEffortValue = z.enum(['none', 'minimal', 'low', 'medium', 'high', 'xhigh']);
const Loose = z.looseObject({});
const JsonSchemaObject = z.record(z.string(), z.unknown());

// ---------------------------------------------------------------- Responses API request

const ResponsesPart = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('input_text'), text: z.string() }),
  z.looseObject({ type: z.literal('output_text'), text: z.string() }),
  z.looseObject({ type: z.literal('refusal'), refusal: z.string() }),
  z.looseObject({ type: z.literal('input_image') }),
  z.looseObject({ type: z.literal('input_file') }),
]);

const ResponsesInputItem = z.preprocess(
  // An "easy" message may leave out `type`.
  (item) =>
    isRecord(item) && item.type === undefined && 'role' in item
      ? { ...item, type: 'message' }
      : item,
  z.discriminatedUnion('type', [
    z.looseObject({
      type: z.literal('message'),
      role: z.enum(['user', 'assistant', 'system', 'developer']),
      content: z.union([z.string(), z.array(ResponsesPart)]),
      id: z.string().optional(),
    }),
    z.looseObject({
      type: z.literal('function_call'),
      call_id: z.string().min(1),
      name: z.string().min(1),
      arguments: z.string(),
      id: z.string().optional(),
    }),
    z.looseObject({
      type: z.literal('function_call_output'),
      call_id: z.string().min(1),
      output: z.union([z.string(), z.array(Loose)]),
      id: z.string().optional(),
    }),
    z.looseObject({ type: z.literal('item_reference'), id: z.string().min(1) }),
    z.looseObject({
      type: z.literal('reasoning'),
      id: z.string().optional(),
      summary: z.array(z.looseObject({ type: z.literal('summary_text'), text: z.string() })),
      encrypted_content: z.string().nullish(),
    }),
  ]),
);
type ResponsesInputItem = z.infer<typeof ResponsesInputItem>;

const FunctionTool = z.looseObject({
  type: z.literal('function', {
    error: 'the scripted model server supports function tools only',
  }),
  name: z.string().regex(TOOL_NAME, { error: "string does not match pattern '^[a-zA-Z0-9_-]+$'" }),
  description: z.string().nullish(),
  parameters: JsonSchemaObject.nullish(),
  strict: z.boolean().nullish(),
});
/**
 * Tools other clients offer beside function tools (Codex CLI: a namespace of agent tools, web
 * search): accepted and listed, never called by a script.
 */
const OtherTool = z.looseObject({
  type: z.enum(['custom', 'namespace', 'web_search', 'web_search_preview', 'local_shell', 'mcp']),
  name: z.string().optional(),
});
const ResponsesTool = z.union([FunctionTool, OtherTool]);

/** Every top-level parameter of `POST /v1/responses`; anything else is an unknown parameter. */
const ResponsesBody = z.strictObject({
  model: z.string().min(1),
  input: z.union([z.string(), z.array(ResponsesInputItem)]).optional(),
  instructions: z.string().nullish(),
  tools: z.array(ResponsesTool).optional(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().nullish(),
  store: z.boolean().nullish(),
  stream: z.boolean().nullish(),
  stream_options: z.strictObject({ include_obfuscation: z.boolean().optional() }).nullish(),
  reasoning: z
    .strictObject({
      effort: ReasoningEffortValue.nullish(),
      summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
      generate_summary: z.enum(['auto', 'concise', 'detailed']).nullish(),
    })
    .nullish(),
  include: z
    .array(
      z.enum([
        'file_search_call.results',
        'web_search_call.results',
        'web_search_call.action.sources',
        'message.input_image.image_url',
        'computer_call_output.output.image_url',
        'code_interpreter_call.outputs',
        'reasoning.encrypted_content',
        'message.output_text.logprobs',
      ]),
    )
    .nullish(),
  max_output_tokens: z.number().int().min(16).nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.enum(['in_memory', '24h']).nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  top_logprobs: z.number().int().nullish(),
  text: Loose.optional(),
  truncation: z.enum(['auto', 'disabled']).nullish(),
  user: z.string().optional(),
  safety_identifier: z.string().nullish(),
  service_tier: z.enum(['auto', 'default', 'flex', 'scale', 'priority']).nullish(),
  previous_response_id: z.string().nullish(),
  conversation: z.unknown().optional(),
  background: z.boolean().nullish(),
  max_tool_calls: z.number().int().nullish(),
  prompt: z.unknown().optional(),
  context_management: z.unknown().optional(),
  moderation: z.unknown().optional(),
  prompt_cache_options: z.unknown().optional(),
  client_metadata: z.record(z.string(), z.string()).nullish(),
});

export function parseResponsesRequest(
  raw: unknown,
  mintedReasoning: ReadonlySet<string>,
): ParseResult {
  const parsed = ResponsesBody.safeParse(raw);
  if (!parsed.success) return zodFailure(parsed.error, raw);
  const body = parsed.data;

  // Patchbay runs stateless so nothing of a repository leaves a trace on the provider's side, and
  // so every turn is self-contained. The real API defaults `store` to true.
  if (body.store !== false) {
    return fail(
      `Patchbay invariant: 'store' must be false (got ${JSON.stringify(body.store ?? null)}).`,
      'store',
    );
  }
  if (body.previous_response_id) {
    return fail(
      "Previous response cannot be used when 'store' is false: the whole input must be resent.",
      'previous_response_id',
    );
  }
  const tools = body.tools ?? [];
  const functions = tools.filter((tool) => tool.type === 'function');
  const toolProblem = checkTools(functions.map((tool) => ({ ...tool, path: 'tools' })));
  if (toolProblem) return toolProblem;

  const input: ResponsesInputItem[] =
    typeof body.input === 'string'
      ? [{ type: 'message', role: 'user', content: body.input }]
      : (body.input ?? []);
  const calls = new Map<string, string>();
  const answered = new Set<string>();
  for (const [i, item] of input.entries()) {
    const param = `input[${i}]`;
    // A reference, or a reasoning item's id, names something the provider stored. Messages,
    // calls and their outputs replayed with ids (Codex CLI numbers every item it sends) are taken
    // as given: their content is all there.
    const stored = item.type === 'item_reference' || item.type === 'reasoning';
    if ('id' in item && typeof item.id === 'string' && item.id !== '' && stored) {
      return fail(
        `Item with id '${item.id}' not found. Items are not persisted when \`store\` is set to false. Try again with \`store\` set to true, or remove this item from your input.`,
        param,
        404,
      );
    }
    switch (item.type) {
      case 'message': {
        if (typeof item.content === 'string') break;
        const allowed =
          item.role === 'assistant'
            ? ['output_text', 'refusal']
            : ['input_text', 'input_image', 'input_file'];
        for (const [j, part] of item.content.entries()) {
          if (!allowed.includes(part.type)) {
            return fail(
              `Invalid value: '${part.type}'. Supported values are: ${allowed.map((a) => `'${a}'`).join(', ')}.`,
              `${param}.content[${j}]`,
            );
          }
        }
        break;
      }
      case 'function_call':
        if (calls.has(item.call_id)) {
          return fail(`Duplicate function call with call_id '${item.call_id}'.`, param);
        }
        calls.set(item.call_id, item.name);
        break;
      case 'function_call_output':
        if (!calls.has(item.call_id)) {
          return fail(
            `No tool call found for function call output with call_id ${item.call_id}.`,
            param,
          );
        }
        if (answered.has(item.call_id)) {
          return fail(`Duplicate function call output for call_id ${item.call_id}.`, param);
        }
        answered.add(item.call_id);
        break;
      case 'reasoning':
        if (!item.encrypted_content) {
          return fail(
            'A reasoning item without encrypted_content cannot be used when `store` is false: request include: ["reasoning.encrypted_content"] and send it back.',
            param,
          );
        }
        if (!mintedReasoning.has(item.encrypted_content)) {
          return fail(
            'The encrypted content for a reasoning item could not be verified. Reason: Encrypted content could not be decrypted or parsed.',
            `${param}.encrypted_content`,
          );
        }
        break;
    }
  }
  for (const callId of calls.keys()) {
    if (!answered.has(callId)) {
      return fail(`No tool output found for function call ${callId}.`, 'input');
    }
  }

  const items: ScriptItem[] = input.map((item): ScriptItem => {
    switch (item.type) {
      case 'message':
        return { type: 'message', role: item.role, text: contentText(item.content) };
      case 'function_call':
        return {
          type: 'function_call',
          callId: item.call_id,
          name: item.name,
          arguments: item.arguments,
        };
      case 'function_call_output':
        return {
          type: 'function_call_output',
          callId: item.call_id,
          output: typeof item.output === 'string' ? item.output : contentText(item.output),
        };
      case 'reasoning':
        return {
          type: 'reasoning',
          summary: item.summary.map((s) => s.text).join('\n\n'),
          encryptedContent: item.encrypted_content ?? undefined,
        };
      case 'item_reference':
        throw new Error('unreachable: a reference is refused above');
    }
  });
  return {
    ok: true,
    request: {
      wire: 'responses',
      model: body.model,
      stream: body.stream === true,
      instructions: body.instructions ?? undefined,
      toolsKey: canonicalJson(tools),
      toolNames: tools.map((t) => t.name ?? t.type),
      conversation: typeof body.input === 'string' ? [body.input] : (body.input ?? []),
      items,
      runKey: body.prompt_cache_key ?? 'default',
      includeEncrypted: (body.include ?? []).includes('reasoning.encrypted_content'),
      includeUsage: true,
      body: raw as Record<string, unknown>,
    },
  };
}

// ---------------------------------------------------------------- Chat Completions request

const ChatContent = z.union([z.string(), z.array(z.looseObject({ type: z.string() }))]);
const ChatToolCall = z.looseObject({
  id: z.string().min(1),
  type: z.literal('function'),
  function: z.looseObject({ name: z.string().min(1), arguments: z.string() }),
});
const ChatMessage = z.discriminatedUnion('role', [
  z.looseObject({ role: z.literal('system'), content: ChatContent }),
  z.looseObject({ role: z.literal('developer'), content: ChatContent }),
  z.looseObject({ role: z.literal('user'), content: ChatContent }),
  z.looseObject({
    role: z.literal('assistant'),
    content: ChatContent.nullish(),
    tool_calls: z.array(ChatToolCall).nullish(),
  }),
  z.looseObject({ role: z.literal('tool'), tool_call_id: z.string().min(1), content: ChatContent }),
]);
type ChatMessage = z.infer<typeof ChatMessage>;

const ChatTool = z.looseObject({
  type: z.literal('function', { error: 'the scripted model server supports function tools only' }),
  function: z.looseObject({
    name: z
      .string()
      .regex(TOOL_NAME, { error: "string does not match pattern '^[a-zA-Z0-9_-]+$'" }),
    description: z.string().optional(),
    parameters: JsonSchemaObject.optional(),
    strict: z.boolean().nullish(),
  }),
});

/** Every top-level parameter of `POST /v1/chat/completions`. */
const ChatBody = z.strictObject({
  model: z.string().min(1),
  messages: z.array(ChatMessage).min(1),
  tools: z.array(ChatTool).min(1, { error: '[] is too short' }).optional(),
  tool_choice: z.unknown().optional(),
  parallel_tool_calls: z.boolean().optional(),
  stream: z.boolean().nullish(),
  stream_options: z
    .strictObject({
      include_usage: z.boolean().optional(),
      include_obfuscation: z.boolean().optional(),
    })
    .nullish(),
  reasoning_effort: ReasoningEffortValue.nullish(),
  max_completion_tokens: z.number().int().min(1).nullish(),
  max_tokens: z.number().int().min(1).nullish(),
  prompt_cache_key: z.string().nullish(),
  prompt_cache_retention: z.enum(['in_memory', '24h']).nullish(),
  store: z.boolean().nullish(),
  metadata: z.record(z.string(), z.string()).nullish(),
  temperature: z.number().min(0).max(2).nullish(),
  top_p: z.number().min(0).max(1).nullish(),
  n: z.literal(1, { error: 'the scripted model server answers one choice only' }).nullish(),
  stop: z.union([z.string(), z.array(z.string())]).nullish(),
  seed: z.number().int().nullish(),
  user: z.string().optional(),
  safety_identifier: z.string().nullish(),
  service_tier: z.enum(['auto', 'default', 'flex', 'scale', 'priority']).nullish(),
  response_format: Loose.optional(),
  frequency_penalty: z.number().nullish(),
  presence_penalty: z.number().nullish(),
  logprobs: z.boolean().nullish(),
  top_logprobs: z.number().int().nullish(),
  logit_bias: z.record(z.string(), z.number()).nullish(),
  verbosity: z.enum(['low', 'medium', 'high']).nullish(),
  modalities: z.unknown().optional(),
  audio: z.unknown().optional(),
  prediction: z.unknown().optional(),
  web_search_options: z.unknown().optional(),
  moderation: z.unknown().optional(),
  prompt_cache_options: z.unknown().optional(),
});

export function parseChatRequest(raw: unknown): ParseResult {
  const parsed = ChatBody.safeParse(raw);
  if (!parsed.success) return zodFailure(parsed.error, raw);
  const body = parsed.data;
  if (body.stream_options != null && body.stream !== true) {
    return fail(
      "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
      'stream_options',
    );
  }
  if (body.store === true) {
    return fail("Patchbay invariant: 'store' must not be true.", 'store');
  }
  const tools = body.tools ?? [];
  const toolProblem = checkTools(tools.map((tool) => ({ ...tool.function, path: 'tools' })));
  if (toolProblem) return toolProblem;

  const messages = body.messages;
  const names = new Map<string, string>();
  let open: Set<string> | undefined;
  for (const [i, message] of messages.entries()) {
    const param = `messages[${i}]`;
    if (message.role === 'tool') {
      if (open === undefined || !open.has(message.tool_call_id)) {
        return fail(
          names.has(message.tool_call_id)
            ? `Duplicate tool message for tool_call_id ${message.tool_call_id}.`
            : "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with 'tool_calls'.",
          `${param}.role`,
        );
      }
      open.delete(message.tool_call_id);
      continue;
    }
    if (open !== undefined && open.size > 0) {
      return fail(
        `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`,
        `${param}.role`,
      );
    }
    open = undefined;
    if (message.role === 'assistant') {
      const calls = message.tool_calls ?? [];
      if (message.content == null && calls.length === 0) {
        return fail(
          "Invalid value for 'content': expected a string, got null.",
          `${param}.content`,
        );
      }
      if (calls.length > 0) {
        open = new Set();
        for (const call of calls) {
          if (names.has(call.id)) return fail(`Duplicate tool_call_id ${call.id}.`, param);
          names.set(call.id, call.function.name);
          open.add(call.id);
        }
      }
    }
  }
  if (open !== undefined && open.size > 0) {
    return fail(
      `An assistant message with 'tool_calls' must be followed by tool messages responding to each 'tool_call_id'. The following tool_call_ids did not have response messages: ${[...open].join(', ')}`,
      'messages',
    );
  }

  const first = messages[0];
  const hasSystem = first !== undefined && (first.role === 'system' || first.role === 'developer');
  return {
    ok: true,
    request: {
      wire: 'chat',
      model: body.model,
      stream: body.stream === true,
      instructions: hasSystem ? contentText(first.content) : undefined,
      toolsKey: canonicalJson(tools),
      toolNames: tools.map((t) => t.function.name),
      conversation: messages,
      items: messages.flatMap(chatItems),
      runKey: body.prompt_cache_key ?? 'default',
      includeEncrypted: false,
      includeUsage: body.stream_options?.include_usage === true,
      body: raw as Record<string, unknown>,
    },
  };
}

function chatItems(message: ChatMessage): ScriptItem[] {
  switch (message.role) {
    case 'tool':
      return [
        {
          type: 'function_call_output',
          callId: message.tool_call_id,
          output: contentText(message.content),
        },
      ];
    case 'assistant': {
      const items: ScriptItem[] = [];
      const text = message.content == null ? '' : contentText(message.content);
      if (text !== '') items.push({ type: 'message', role: 'assistant', text });
      for (const call of message.tool_calls ?? []) {
        items.push({
          type: 'function_call',
          callId: call.id,
          name: call.function.name,
          arguments: call.function.arguments,
        });
      }
      return items;
    }
    default:
      return [{ type: 'message', role: message.role, text: contentText(message.content) }];
  }
}

// ---------------------------------------------------------------- shared

interface ToolToCheck {
  name: string;
  parameters?: Record<string, unknown> | null | undefined;
  strict?: boolean | null | undefined;
  path: string;
}

function checkTools(tools: ToolToCheck[]): ParseResult | undefined {
  const seen = new Set<string>();
  for (const [i, tool] of tools.entries()) {
    if (seen.has(tool.name)) {
      return fail(`Patchbay invariant: duplicate tool name '${tool.name}'.`, `tools[${i}].name`);
    }
    seen.add(tool.name);
    if (tool.strict === true) {
      const problem = strictSchemaProblem(tool.parameters ?? {}, '');
      if (problem) {
        return fail(
          `Invalid schema for function '${tool.name}': ${problem}`,
          `tools[${i}].parameters`,
        );
      }
    }
  }
  return undefined;
}

/** Structured outputs' rule: every object closes its properties and requires all of them. */
function strictSchemaProblem(schema: unknown, context: string): string | undefined {
  if (!isRecord(schema)) return undefined;
  const properties = schema.properties;
  if (schema.type === 'object' || isRecord(properties)) {
    if (schema.additionalProperties !== false) {
      return `In context=(${context}), 'additionalProperties' is required to be supplied and to be false.`;
    }
    const keys = isRecord(properties) ? Object.keys(properties) : [];
    const required = Array.isArray(schema.required) ? schema.required : [];
    const missing = keys.find((key) => !required.includes(key));
    if (missing !== undefined) {
      return `In context=(${context}), 'required' is required to be supplied and to be an array including every key in properties. Missing '${missing}'.`;
    }
    for (const key of keys) {
      const problem = strictSchemaProblem(
        (properties as Record<string, unknown>)[key],
        `${context}${context ? ', ' : ''}'properties', '${key}'`,
      );
      if (problem) return problem;
    }
  }
  if (isRecord(schema.items)) return strictSchemaProblem(schema.items, `${context}, 'items'`);
  return undefined;
}

function fail(message: string, param?: string, status = 400): ParseResult {
  return { ok: false, status, message, param };
}

/** Words a zod failure the way the OpenAI API words the same mistake. */
function zodFailure(error: z.ZodError, raw: unknown): ParseResult {
  const first = error.issues[0];
  if (!first) return fail('Invalid request body.');
  const issue = deepestIssue(first);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const at = paramName([...issue.path, key]);
    return fail(`Unknown parameter: '${at}'.`, at);
  }
  const at = paramName(issue.path);
  if (issue.code === 'invalid_type' && valueAt(raw, issue.path) === undefined) {
    return fail(`Missing required parameter: '${at}'.`, at);
  }
  if (issue.code === 'invalid_type') {
    return fail(`Invalid type for '${at}': expected ${issue.expected}.`, at);
  }
  return fail(`Invalid value for '${at}': ${issue.message}.`, at);
}

/**
 * For a union (`input` is a string or an array of items), the branch that got furthest says what
 * is wrong: "expected a string" helps nobody who sent an array.
 */
function deepestIssue(issue: z.core.$ZodIssue): z.core.$ZodIssue {
  if (issue.code !== 'invalid_union') return issue;
  let best: z.core.$ZodIssue | undefined;
  for (const branch of issue.errors) {
    const candidate = branch[0];
    if (candidate && (best === undefined || candidate.path.length > best.path.length)) {
      best = candidate;
    }
  }
  if (best === undefined || best.path.length === 0) return issue;
  return deepestIssue({ ...best, path: [...issue.path, ...best.path] });
}

/** `input[2].call_id`, the API's way of naming a parameter. */
function paramName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out || 'body';
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function contentText(content: string | readonly Record<string, unknown>[]): string {
  if (typeof content === 'string') return content;
  return content
    .map((part) =>
      typeof part.text === 'string'
        ? part.text
        : typeof part.refusal === 'string'
          ? part.refusal
          : '',
    )
    .join('');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** JSON with object keys sorted, so equal values compare equal whatever their key order. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isRecord(v)
      ? Object.fromEntries(
          Object.keys(v)
            .sort()
            .map((k) => [k, v[k]]),
        )
      : v,
  );
}
