import { randomBytes } from 'node:crypto';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type PlannedAnswer,
  type SseEvent,
  chatChunks,
  chatCompletion,
  chatErrorChunks,
  encodeSse,
  responseObject,
  responsesEvents,
  responsesFailedEvents,
} from './render.js';
import {
  type ParseResult,
  type ParsedRequest,
  canonicalJson,
  parseChatRequest,
  parseResponsesRequest,
} from './requests.js';
import type {
  Fault,
  RecordedRequest,
  Script,
  ScriptItem,
  ScriptRequest,
  ScriptStep,
  ScriptedTurn,
  Violation,
  Wire,
} from './script.js';

export interface ScriptedModelServerOptions {
  /** The turns to play, in order. A generator makes an endless script. */
  script: Script;
  /**
   * Check that each run's conversation only grows: a request must resend the previous request's
   * conversation unchanged and carry everything the previous answer produced (text, calls,
   * encrypted reasoning). A turn marked `compacts` lets the next request start over.
   * @default true
   */
  appendOnly?: boolean;
  /**
   * When set, requests must send `Authorization: Bearer <apiKey>` or get a 401.
   * @default unset: any key, or none, is accepted
   */
  apiKey?: string;
  /**
   * Characters per streamed delta.
   * @default 16
   */
  chunkSize?: number;
  /**
   * Model name the answers report.
   * @default the model each request names
   */
  model?: string;
  /**
   * Largest request body accepted; larger ones get a 413.
   * @default 16 MiB
   */
  maxBodyBytes?: number;
}

/** What the server remembers of one run (requests sharing a `prompt_cache_key`). */
interface RunState {
  wire: Wire;
  instructions: string | undefined;
  toolsKey: string;
  /** The conversation of the last answered request. */
  conversation: unknown[] | undefined;
  /** Its prompt, serialised, for the crude prompt-cache estimate. */
  prompt: string | undefined;
  /** What the last answer produced, which the next request must carry. */
  emitted: ScriptItem[];
}

interface CurrentTurn {
  index: number;
  turn: ScriptedTurn;
  faultsPlayed: number;
}

class Rejection extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code: string | null = null,
    readonly param: string | null = null,
  ) {
    super(message);
  }
}

/**
 * A fake OpenAI-compatible model on 127.0.0.1 that plays a script of turns over both wires,
 * records every request, refuses malformed ones (recording a violation), and injects faults.
 * It makes no outbound connection of its own. Start it with {@link startScriptedModelServer};
 * point the SDK's `baseURL` at {@link ScriptedModelServer.url}.
 */
export class ScriptedModelServer {
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[] = [];
  /** Every refused request, with the reason. */
  readonly violations: Violation[] = [];

  readonly #server: Server;
  readonly #script: Iterator<ScriptStep>;
  readonly #options: Required<Omit<ScriptedModelServerOptions, 'script' | 'apiKey' | 'model'>> &
    Pick<ScriptedModelServerOptions, 'apiKey' | 'model'>;
  readonly #runs = new Map<string, RunState>();
  readonly #minted = new Set<string>();
  #current: CurrentTurn | undefined;
  #turnsStarted = 0;
  #turnsPlayed = 0;
  #exhausted = false;
  /** Serialises turn selection, so concurrent requests never pull the same step twice. */
  #selecting: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  private constructor(server: Server, options: ScriptedModelServerOptions) {
    this.#server = server;
    this.#script = options.script[Symbol.iterator]();
    this.#options = {
      appendOnly: options.appendOnly ?? true,
      chunkSize: options.chunkSize ?? 16,
      maxBodyBytes: options.maxBodyBytes ?? 16 * 1024 * 1024,
      ...(options.apiKey === undefined ? {} : { apiKey: options.apiKey }),
      ...(options.model === undefined ? {} : { model: options.model }),
    };
  }

  /** Listens on 127.0.0.1 on a free port. */
  static async start(options: ScriptedModelServerOptions): Promise<ScriptedModelServer> {
    const server = createServer();
    const instance = new ScriptedModelServer(server, options);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      void instance.#handle(req, res);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      // Loopback only: the scripted model must never be reachable from elsewhere.
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    return instance;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Base URL for the OpenAI SDK, `/v1` included. */
  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** Turns answered in full. */
  get turnsPlayed(): number {
    return this.#turnsPlayed;
  }

  /** Throws, listing them, when any request was refused. */
  assertNoViolations(): void {
    if (this.violations.length === 0) return;
    const lines = this.violations.map(
      (v) => `  request #${v.request} (HTTP ${v.status}): ${v.message}`,
    );
    throw new Error(`the scripted model server refused requests:\n${lines.join('\n')}`);
  }

  /** Stops listening and drops every connection, streams in progress included. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeAllConnections();
    });
    return this.#closing;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record: RecordedRequest = {
      index: this.requests.length,
      method: req.method ?? '',
      path: req.url ?? '',
      wire: undefined,
      headers: req.headers,
      body: undefined,
      stream: false,
      turn: undefined,
      status: 0,
      outcome: 'pending',
      fault: undefined,
    };
    this.requests.push(record);
    res.on('close', () => {
      if (!res.writableFinished && record.outcome === 'pending') record.outcome = 'client_closed';
    });
    try {
      await this.#serve(req, res, record);
    } catch (err) {
      if (err instanceof Rejection) {
        this.violations.push({ request: record.index, status: err.status, message: err.message });
        record.outcome = 'rejected';
        sendError(res, record, err.status, err.message, err.code, err.param);
      } else {
        const message = `scripted model server failure: ${err instanceof Error ? err.message : String(err)}`;
        this.violations.push({ request: record.index, status: 500, message });
        record.outcome = 'rejected';
        sendError(res, record, 500, message, 'server_error');
      }
    }
  }

  async #serve(req: IncomingMessage, res: ServerResponse, record: RecordedRequest): Promise<void> {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const wire: Wire | undefined =
      path === '/v1/responses' || path === '/responses'
        ? 'responses'
        : path === '/v1/chat/completions' || path === '/chat/completions'
          ? 'chat'
          : undefined;
    if (req.method === 'GET' && (path === '/v1/models' || path === '/models')) {
      record.outcome = 'answered';
      sendJson(res, record, 200, {
        object: 'list',
        data: [{ id: this.#options.model ?? 'scripted', object: 'model', owned_by: 'patchbay' }],
      });
      return;
    }
    if (wire === undefined || req.method !== 'POST') {
      throw new Rejection(404, `Invalid URL (${req.method ?? ''} ${path})`, 'unknown_url');
    }
    record.wire = wire;

    const text = await readBody(req, this.#options.maxBodyBytes);
    let body: unknown;
    try {
      body = JSON.parse(text);
      record.body = body;
    } catch {
      record.body = text;
      throw new Rejection(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      );
    }
    if (this.#options.apiKey !== undefined) {
      if (req.headers.authorization !== `Bearer ${this.#options.apiKey}`) {
        throw new Rejection(401, 'Incorrect API key provided.', 'invalid_api_key');
      }
    }
    const parsed: ParseResult =
      wire === 'responses' ? parseResponsesRequest(body, this.#minted) : parseChatRequest(body);
    if (!parsed.ok) throw new Rejection(parsed.status, parsed.message, null, parsed.param ?? null);
    const request = parsed.request;
    record.stream = request.stream;
    const run = this.#checkRun(request);

    const current = await this.#selectTurn(request, record);
    record.turn = current.index;
    const answer = this.#plan(current, request, run);
    const fault = current.turn.faults?.[current.faultsPlayed];
    if (fault !== undefined) {
      current.faultsPlayed += 1;
      record.outcome = 'fault';
      record.fault = fault.type;
      await this.#playFault(fault, res, record, request, answer);
      return;
    }
    if (!(await waitOrClose(current.turn.delayMs ?? 0, res))) return;
    if (request.stream) {
      const events =
        wire === 'responses' ? responsesEvents(answer, request) : chatChunks(answer, request);
      startSse(res, record);
      for (const event of events) res.write(encodeSse(event));
      res.end();
    } else {
      sendJson(
        res,
        record,
        200,
        wire === 'responses' ? responseObject(answer, request, 'final') : chatCompletion(answer),
      );
    }
    this.#delivered(current, request, run, answer);
    record.outcome = 'answered';
  }

  /** Checks a request against the run it belongs to; creates the run on its first request. */
  #checkRun(request: ParsedRequest): RunState {
    const key = request.runKey;
    let run = this.#runs.get(key);
    if (run === undefined) {
      run = {
        wire: request.wire,
        instructions: request.instructions,
        toolsKey: request.toolsKey,
        conversation: undefined,
        prompt: undefined,
        emitted: [],
      };
      this.#runs.set(key, run);
      return run;
    }
    const which = key === 'default' ? 'this run' : `run '${key}'`;
    if (run.wire !== request.wire) {
      throw new Rejection(400, `Patchbay invariant: ${which} switched wires mid-run.`);
    }
    // Prompt caching keys on the exact prefix: instructions and tools lead every request.
    if (run.instructions !== request.instructions) {
      throw new Rejection(
        400,
        `Patchbay invariant: the instructions changed between turns of ${which}, which defeats prompt caching.`,
        null,
        'instructions',
      );
    }
    if (run.toolsKey !== request.toolsKey) {
      throw new Rejection(
        400,
        `Patchbay invariant: the tools changed between turns of ${which}, which defeats prompt caching.`,
        null,
        'tools',
      );
    }
    if (this.#options.appendOnly && run.conversation !== undefined) {
      const before = run.conversation;
      const now = request.conversation;
      const changed = before.findIndex(
        (item, i) => i >= now.length || canonicalJson(item) !== canonicalJson(now[i]),
      );
      if (changed >= 0) {
        throw new Rejection(
          400,
          `Patchbay invariant: the conversation of ${which} must only grow, but item ${changed} of the previous request was changed or dropped.`,
          null,
          `input[${changed}]`,
        );
      }
      const added = request.items.slice(itemsIn(before, request.wire));
      for (const item of run.emitted) {
        if (!added.some((a) => sameEmission(a, item))) {
          throw new Rejection(
            400,
            `Patchbay invariant: the previous answer's ${describeEmission(item)} is missing from the next request of ${which}.`,
          );
        }
      }
    }
    return run;
  }

  /** The turn this request is answered from: the unfinished one, or the script's next step. */
  async #selectTurn(request: ParsedRequest, record: RecordedRequest): Promise<CurrentTurn> {
    const select = async (): Promise<CurrentTurn> => {
      if (this.#current !== undefined) return this.#current;
      const next = this.#exhausted ? undefined : this.#script.next();
      if (next === undefined || next.done === true) {
        this.#exhausted = true;
        throw new Rejection(
          400,
          `the script has no turn left for request #${record.index} (${this.#turnsPlayed} turns played): the client asked for more turns than the test scripted`,
          'script_exhausted',
        );
      }
      const index = this.#turnsStarted++;
      const step = next.value;
      let turn: ScriptedTurn;
      if (typeof step === 'function') {
        try {
          turn = await step(scriptRequest(request, index, record));
        } catch (err) {
          throw new Rejection(
            400,
            `the script function for turn ${index} threw: ${err instanceof Error ? err.message : String(err)}`,
            'script_error',
          );
        }
      } else {
        turn = step;
      }
      this.#current = { index, turn, faultsPlayed: 0 };
      return this.#current;
    };
    const selected = this.#selecting.then(select, select);
    this.#selecting = selected.catch(() => undefined);
    return selected;
  }

  /** Decides ids, encrypted reasoning and token counts of one answer. */
  #plan(current: CurrentTurn, request: ParsedRequest, run: RunState): PlannedAnswer {
    const { turn, index } = current;
    const summary =
      turn.reasoning === undefined
        ? undefined
        : typeof turn.reasoning === 'string'
          ? [turn.reasoning]
          : [...turn.reasoning];
    let encryptedContent: string | undefined;
    if (summary && request.includeEncrypted) {
      encryptedContent = `enc_${Buffer.from(JSON.stringify({ turn: index, summary })).toString('base64url')}.${randomId(8)}`;
      this.#minted.add(encryptedContent);
    }
    const calls = (turn.calls ?? []).map((call, i) => ({
      id: `fc_${randomId(12)}`,
      callId: call.callId ?? `call_${index}_${i}`,
      name: call.name,
      arguments:
        typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
    }));
    const prompt = canonicalJson([request.instructions, request.toolsKey, request.conversation]);
    const reasoningChars = (summary ?? []).join('').length;
    const outputChars =
      (turn.text ?? '').length + calls.reduce((n, c) => n + c.name.length + c.arguments.length, 0);
    const reasoningTokens = turn.usage?.reasoningTokens ?? Math.ceil(reasoningChars / 4);
    const inputTokens = turn.usage?.inputTokens ?? Math.ceil(prompt.length / 4);
    const usage =
      turn.usage === null
        ? null
        : {
            inputTokens,
            cachedInputTokens:
              turn.usage?.cachedInputTokens ??
              Math.min(
                inputTokens,
                Math.floor((run.prompt === undefined ? 0 : sharedPrefix(run.prompt, prompt)) / 4),
              ),
            outputTokens: turn.usage?.outputTokens ?? Math.ceil(outputChars / 4) + reasoningTokens,
            reasoningTokens,
          };
    const wire = request.wire;
    return {
      responseId: wire === 'responses' ? `resp_${randomId(24)}` : `chatcmpl-${randomId(24)}`,
      model: this.#options.model ?? request.model,
      createdAt: Math.floor(Date.now() / 1000),
      reasoning: summary && { id: `rs_${randomId(24)}`, summary, encryptedContent },
      message: turn.text === undefined ? undefined : { id: `msg_${randomId(24)}`, text: turn.text },
      calls,
      usage,
      incomplete: turn.incomplete,
      chunkSize: Math.max(1, turn.chunkSize ?? this.#options.chunkSize),
    };
  }

  #delivered(current: CurrentTurn, request: ParsedRequest, run: RunState, answer: PlannedAnswer) {
    if (this.#current === current) this.#current = undefined;
    this.#turnsPlayed += 1;
    run.conversation = request.conversation;
    run.prompt = canonicalJson([request.instructions, request.toolsKey, request.conversation]);
    const emitted: ScriptItem[] = [];
    // Only what the client can resend: encrypted reasoning, and text or calls.
    if (answer.reasoning?.encryptedContent !== undefined) {
      emitted.push({
        type: 'reasoning',
        summary: answer.reasoning.summary.join('\n\n'),
        encryptedContent: answer.reasoning.encryptedContent,
      });
    }
    if (answer.message !== undefined && answer.message.text !== '') {
      emitted.push({ type: 'message', role: 'assistant', text: answer.message.text });
    }
    for (const call of answer.calls) {
      emitted.push({
        type: 'function_call',
        callId: call.callId,
        name: call.name,
        arguments: call.arguments,
      });
    }
    run.emitted = emitted;
    if (current.turn.compacts === true) {
      // The loop is about to replace older turns with this summary: nothing to append to.
      run.conversation = undefined;
      run.emitted = [];
    }
  }

  async #playFault(
    fault: Fault,
    res: ServerResponse,
    record: RecordedRequest,
    request: ParsedRequest,
    answer: PlannedAnswer,
  ): Promise<void> {
    const events = (): SseEvent[] =>
      request.wire === 'responses' ? responsesEvents(answer, request) : chatChunks(answer, request);
    switch (fault.type) {
      case 'status': {
        const headers: Record<string, string> = {};
        if (fault.retryAfter !== undefined) headers['retry-after'] = String(fault.retryAfter);
        if (fault.retryAfterMs !== undefined)
          headers['retry-after-ms'] = String(fault.retryAfterMs);
        sendJson(res, record, fault.status, fault.body ?? errorBody(fault.status), headers);
        return;
      }
      case 'cut': {
        const count = fault.afterEvents ?? 3;
        if (request.stream) {
          startSse(res, record);
          for (const event of events().slice(0, count)) await write(res, encodeSse(event));
        } else {
          record.status = 200;
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100000' });
          await write(res, '{"id": "resp_cut", "object": "response", "output": [');
        }
        // Destroying the socket, rather than ending the response, is what a dropped connection
        // looks like to the client: a body that stops before it is complete.
        res.socket?.destroy();
        return;
      }
      case 'stall': {
        if (fault.afterEvents !== undefined) {
          if (request.stream) {
            startSse(res, record);
            for (const event of events().slice(0, fault.afterEvents)) {
              await write(res, encodeSse(event));
            }
          } else {
            record.status = 200;
            res.writeHead(200, { 'content-type': 'application/json' });
            res.flushHeaders();
          }
        }
        await waitOrClose(Number.POSITIVE_INFINITY, res);
        return;
      }
      case 'malformed': {
        if (request.stream) {
          startSse(res, record);
          for (const event of events().slice(0, fault.afterEvents ?? 1))
            res.write(encodeSse(event));
          const type = request.wire === 'responses' ? 'response.output_text.delta' : undefined;
          res.end(
            encodeSse({ event: type, data: '{"type": "response.output_text.delta", "delta": ' }),
          );
        } else {
          record.status = 200;
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{"id": "resp_malformed", "object": "response", "output": [');
        }
        return;
      }
      case 'stream_error': {
        const code = fault.code === undefined ? 'server_error' : fault.code;
        const message =
          fault.message ??
          'The server had an error processing your request. Sorry about that! (scripted)';
        if (!request.stream) {
          sendError(res, record, 500, message, code);
          return;
        }
        startSse(res, record);
        const failed =
          request.wire === 'responses'
            ? responsesFailedEvents(answer, request, code, message)
            : chatErrorChunks(answer, request, code, message);
        for (const event of failed) res.write(encodeSse(event));
        res.end();
        return;
      }
    }
  }
}

/** Starts a {@link ScriptedModelServer} on 127.0.0.1 and a free port. */
export function startScriptedModelServer(
  options: ScriptedModelServerOptions,
): Promise<ScriptedModelServer> {
  return ScriptedModelServer.start(options);
}

function scriptRequest(
  request: ParsedRequest,
  turn: number,
  record: RecordedRequest,
): ScriptRequest {
  const names = new Map<string, string>();
  const toolOutputs: ScriptRequest['toolOutputs'] = [];
  let lastUserText: string | undefined;
  for (const item of request.items) {
    if (item.type === 'function_call') names.set(item.callId, item.name);
    if (item.type === 'function_call_output') {
      toolOutputs.push({ callId: item.callId, name: names.get(item.callId), output: item.output });
    }
    if (item.type === 'message' && item.role === 'user') lastUserText = item.text;
  }
  return {
    wire: request.wire,
    turn,
    model: request.model,
    instructions: request.instructions,
    items: request.items,
    toolNames: request.toolNames,
    toolOutputs,
    lastToolOutput: toolOutputs.at(-1)?.output,
    lastUserText,
    body: request.body,
    headers: record.headers,
  };
}

/** How many neutral items the first `count` conversation entries make. */
function itemsIn(conversation: unknown[], wire: Wire): number {
  if (wire === 'responses') return conversation.length;
  // A chat assistant message may hold text and several calls: count what it expands to.
  const parsed = parseChatRequest({ model: 'm', messages: conversation });
  return parsed.ok ? parsed.request.items.length : conversation.length;
}

function sameEmission(a: ScriptItem, b: ScriptItem): boolean {
  if (a.type !== b.type) return false;
  switch (b.type) {
    case 'function_call':
      return a.type === 'function_call' && a.callId === b.callId;
    case 'message':
      return a.type === 'message' && a.role === 'assistant' && a.text === b.text;
    case 'reasoning':
      return a.type === 'reasoning' && a.encryptedContent === b.encryptedContent;
    case 'function_call_output':
      return false;
  }
}

function describeEmission(item: ScriptItem): string {
  switch (item.type) {
    case 'function_call':
      return `function call ${item.callId} (${item.name})`;
    case 'message':
      return 'assistant message';
    case 'reasoning':
      return 'reasoning item (with its encrypted content)';
    case 'function_call_output':
      return 'tool output';
  }
}

function sharedPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

function randomId(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

function errorBody(status: number): unknown {
  if (status === 429) {
    return {
      error: {
        message: 'Rate limit reached for requests (scripted). Please try again in 1s.',
        type: 'requests',
        param: null,
        code: 'rate_limit_exceeded',
      },
    };
  }
  if (status >= 500) {
    return {
      error: {
        message:
          'The server had an error while processing your request. Sorry about that! (scripted)',
        type: 'server_error',
        param: null,
        code: null,
      },
    };
  }
  return {
    error: {
      message: `scripted HTTP ${status}`,
      type: 'invalid_request_error',
      param: null,
      code: null,
    },
  };
}

function requestId(record: RecordedRequest): string {
  return `req_scripted_${record.index}`;
}

function sendJson(
  res: ServerResponse,
  record: RecordedRequest,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent || res.destroyed) return;
  record.status = status;
  res.writeHead(status, {
    'content-type': 'application/json',
    'x-request-id': requestId(record),
    ...headers,
  });
  res.end(JSON.stringify(body));
}

function sendError(
  res: ServerResponse,
  record: RecordedRequest,
  status: number,
  message: string,
  code: string | null = null,
  param: string | null = null,
): void {
  const type = status >= 500 ? 'server_error' : 'invalid_request_error';
  sendJson(res, record, status, { error: { message, type, param, code } });
}

function startSse(res: ServerResponse, record: RecordedRequest): void {
  record.status = 200;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache',
    'x-request-id': requestId(record),
  });
  res.flushHeaders();
}

/** Writes and waits until the data is handed to the socket, so a cut after it is really after. */
function write(res: ServerResponse, chunk: string): Promise<void> {
  return new Promise((resolve) => {
    if (res.destroyed) {
      resolve();
      return;
    }
    res.write(chunk, () => resolve());
  });
}

/** Waits `ms`; false when the client went away (or the server closed) first. */
function waitOrClose(ms: number, res: ServerResponse): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onClose = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = Number.isFinite(ms)
      ? setTimeout(() => {
          res.off('close', onClose);
          resolve(true);
        }, ms)
      : undefined;
    res.once('close', onClose);
  });
}

async function readBody(req: IncomingMessage, limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > limit) {
      throw new Rejection(413, `request body larger than ${limit} bytes`, 'payload_too_large');
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}
