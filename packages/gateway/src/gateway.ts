import { EMPTY_USAGE, type Logger, type Usage, silentLogger } from '@patchbay/core';
import { EventSourceParserStream } from 'eventsource-parser/stream';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { type IncomingMessage, type Server, type ServerResponse, createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { usageOf, usageOfStreamEvent } from './usage.js';

export interface ModelGatewayOptions {
  /** The model server the gateway speaks for, and its key (never sent to a client). */
  upstream: { baseUrl: string; apiKey: string | undefined };
  /** Address to listen on: the host's address on the sandboxes' internal network. */
  host: string;
  /** @default 0 (any free port) */
  port?: number;
  /** Largest request body. @default 16 MiB */
  bodyLimitBytes?: number;
  log?: Logger;
}

/** What one task may spend through the gateway, and what it has. */
export interface GatewayGrant {
  /** The bearer token the task's agent uses; valid until `revoke()`. */
  readonly token: string;
  /** Tokens and model calls so far (a call counts once its answer is complete). */
  usage(): Usage;
  /** True once a budget ran out: every later request is refused with 429. */
  exhausted(): 'max_tokens' | 'max_turns' | null;
  /** The token stops working; requests in flight are cut. Idempotent. */
  revoke(): void;
}

interface Grant {
  taskId: string;
  maxTokens: number;
  maxCalls: number;
  usage: Usage;
  inFlight: Set<AbortController>;
  revoked: boolean;
}

/** Paths a client may use, and how. */
const ROUTES: Record<string, 'POST' | 'GET'> = {
  '/v1/responses': 'POST',
  '/v1/chat/completions': 'POST',
  '/v1/models': 'GET',
};

/** Response headers of the upstream worth passing on (content type, request ids, rate limits). */
const PASSED_HEADERS = /^(content-type|x-request-id|openai-|x-ratelimit-|retry-after)/i;

/** Which budget a grant has spent, if any (usage only grows: once spent, always spent). */
function exhaustion(grant: Grant): 'max_tokens' | 'max_turns' | null {
  if (grant.usage.inputTokens + grant.usage.outputTokens >= grant.maxTokens) return 'max_tokens';
  if (grant.usage.modelCalls >= grant.maxCalls) return 'max_turns';
  return null;
}

const hashOf = (token: string): string => createHash('sha256').update(token).digest('hex');

function sendError(
  res: ServerResponse,
  status: number,
  message: string,
  type: string,
  code: string | null,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type, param: null, code } }));
}

/**
 * The model gateway: an OpenAI-compatible endpoint a sandbox can reach in place of the model
 * server. A task's agent authenticates with a token of its own, valid while the task runs; the
 * gateway forwards `/v1/responses`, `/v1/chat/completions` and `/v1/models` to the upstream with
 * the real key, streams the answer back as it comes, counts each answer's usage against the
 * task, and refuses (429, `budget_exhausted`) once a budget is spent. Nothing secret is ever in
 * the sandbox.
 */
export class ModelGateway {
  readonly #options: Required<Omit<ModelGatewayOptions, 'log'>> & { log: Logger };
  readonly #grants = new Map<string, Grant>();
  #server: Server | undefined;

  private constructor(options: ModelGatewayOptions) {
    this.#options = {
      port: 0,
      bodyLimitBytes: 16 * 1024 * 1024,
      log: silentLogger,
      ...options,
      upstream: { ...options.upstream, baseUrl: options.upstream.baseUrl.replace(/\/+$/, '') },
    };
  }

  static async start(options: ModelGatewayOptions): Promise<ModelGateway> {
    const gateway = new ModelGateway(options);
    const server = createServer((req, res) => void gateway.#handle(req, res));
    server.listen(gateway.#options.port, gateway.#options.host);
    await once(server, 'listening');
    gateway.#server = server;
    return gateway;
  }

  /** The base URL a client configures, e.g. `http://172.18.0.1:40123/v1`. */
  get url(): string {
    const { address, port } = this.#server!.address() as AddressInfo;
    return `http://${address.includes(':') ? `[${address}]` : address}:${port}/v1`;
  }

  /** A token for one task's run, with its budgets. */
  grant(taskId: string, budget: { maxTokens: number; maxTurns: number }): GatewayGrant {
    const token = `pbg_${randomBytes(24).toString('base64url')}`;
    const key = hashOf(token);
    const grant: Grant = {
      taskId,
      maxTokens: budget.maxTokens,
      maxCalls: budget.maxTurns,
      usage: { ...EMPTY_USAGE },
      inFlight: new Set(),
      revoked: false,
    };
    this.#grants.set(key, grant);
    return {
      token,
      usage: () => ({ ...grant.usage }),
      exhausted: () => exhaustion(grant),
      revoke: () => {
        grant.revoked = true;
        this.#grants.delete(key);
        for (const request of grant.inFlight) request.abort();
      },
    };
  }

  async close(): Promise<void> {
    for (const grant of this.#grants.values()) for (const r of grant.inFlight) r.abort();
    this.#grants.clear();
    const server = this.#server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '').split('?', 1)[0]!;
    const method = ROUTES[path];
    if (method === undefined)
      return sendError(
        res,
        404,
        `Unknown path ${path.slice(0, 100)}`,
        'invalid_request_error',
        null,
      );
    if (req.method !== method)
      return sendError(res, 405, `Use ${method} for ${path}`, 'invalid_request_error', null);
    const token = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
    const grant = token === undefined ? undefined : this.#grants.get(hashOf(token));
    if (grant === undefined || grant.revoked)
      return sendError(
        res,
        401,
        'Incorrect API key provided: this token is not valid (or no longer: its task has ended).',
        'invalid_request_error',
        'invalid_api_key',
      );
    if (exhaustion(grant) !== null) return this.#refuse(res, grant);

    let body: Buffer | undefined;
    if (method === 'POST') {
      body = await this.#readBody(req);
      if (body === undefined)
        return sendError(res, 413, 'The request body is too large.', 'invalid_request_error', null);
      if (path === '/v1/chat/completions') body = withStreamUsage(body);
    }
    const abort = new AbortController();
    grant.inFlight.add(abort);
    const onClientGone = (): void => {
      if (!res.writableFinished) abort.abort();
    };
    res.once('close', onClientGone);
    try {
      await this.#forward(req, res, path, body, grant, abort.signal);
    } finally {
      grant.inFlight.delete(abort);
      res.off('close', onClientGone);
    }
  }

  #refuse(res: ServerResponse, grant: Grant): void {
    const tokens = grant.usage.inputTokens + grant.usage.outputTokens;
    const message =
      exhaustion(grant) === 'max_turns'
        ? `This task's budget of ${grant.maxCalls} model calls is spent.`
        : `This task's token budget is spent (${tokens} of ${grant.maxTokens} tokens).`;
    sendError(res, 429, message, 'insufficient_quota', 'budget_exhausted');
  }

  async #readBody(req: IncomingMessage): Promise<Buffer | undefined> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > this.#options.bodyLimitBytes) return undefined;
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async #forward(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    body: Buffer | undefined,
    grant: Grant,
    signal: AbortSignal,
  ): Promise<void> {
    const { log, upstream } = this.#options;
    const headers: Record<string, string> = { 'accept-encoding': 'identity' };
    if (upstream.apiKey !== undefined) headers.authorization = `Bearer ${upstream.apiKey}`;
    for (const name of ['content-type', 'accept', 'openai-beta'] as const) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    let answer: Response;
    try {
      answer = await fetch(`${upstream.baseUrl}${path.slice('/v1'.length)}`, {
        method: req.method!,
        headers,
        ...(body === undefined ? {} : { body }),
        signal,
      });
    } catch (err) {
      if (signal.aborted) return this.#cut(res, grant);
      log.warn({ err, taskId: grant.taskId }, 'the model server did not answer');
      return sendError(res, 502, 'The model server did not answer.', 'server_error', null);
    }
    const passed: Record<string, string> = {};
    answer.headers.forEach((value, name) => {
      if (PASSED_HEADERS.test(name)) passed[name] = value;
    });
    res.writeHead(answer.status, passed);
    if (answer.body === null) {
      res.end();
      return;
    }
    const streamed = (answer.headers.get('content-type') ?? '').includes('text/event-stream');
    const [toClient, toCount] = answer.body.tee();
    const counted = answer.ok ? this.#count(toCount, streamed) : toCount.cancel().then(() => null);
    try {
      for await (const chunk of toClient) {
        if (!res.write(chunk)) await once(res, 'drain', { signal });
      }
    } catch (err) {
      // The upstream cut its stream (or the grant was revoked, or the client left): the client
      // sees a broken answer, not a complete-looking one.
      if (!signal.aborted)
        log.warn({ err, taskId: grant.taskId }, 'the model stream broke off mid-answer');
      void counted.catch(() => undefined);
      return this.#cut(res, grant);
    }
    res.end();
    const usage = await counted.catch(() => null);
    if (!answer.ok || path === '/v1/models') return;
    grant.usage = {
      ...grant.usage,
      modelCalls: grant.usage.modelCalls + 1,
      ...(usage === null
        ? {}
        : {
            inputTokens: grant.usage.inputTokens + usage.inputTokens,
            cachedInputTokens: grant.usage.cachedInputTokens + usage.cachedInputTokens,
            outputTokens: grant.usage.outputTokens + usage.outputTokens,
            reasoningTokens: grant.usage.reasoningTokens + usage.reasoningTokens,
          }),
    };
    // A budget spent by this answer stops the task's other calls in flight too.
    if (exhaustion(grant) !== null) for (const other of grant.inFlight) other.abort();
  }

  /** Ends a response that cannot be completed: an error status if nothing was sent yet, else a reset. */
  #cut(res: ServerResponse, grant: Grant): void {
    if (exhaustion(grant) !== null && !res.headersSent) return this.#refuse(res, grant);
    if (!res.headersSent)
      return sendError(res, 502, 'The model server broke off the answer.', 'server_error', null);
    res.destroy();
  }

  /** The usage an answer reports: its stream's final event, or its JSON body's `usage`. */
  async #count(
    body: ReadableStream<Uint8Array>,
    streamed: boolean,
  ): Promise<ReturnType<typeof usageOf>> {
    if (streamed) {
      let found: ReturnType<typeof usageOf> = null;
      const events = body
        .pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream());
      for await (const event of events) found = usageOfStreamEvent(event.data) ?? found;
      return found;
    }
    const text = await new Response(body).text();
    try {
      return usageOf((JSON.parse(text) as { usage?: unknown }).usage);
    } catch {
      return null;
    }
  }
}

/**
 * A streamed Chat Completions request asks for the usage chunk at the end (the only way such a
 * stream reports its tokens); the request is otherwise passed as it came.
 */
function withStreamUsage(body: Buffer): Buffer {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    if (parsed.stream !== true) return body;
    const options = (parsed.stream_options ?? {}) as Record<string, unknown>;
    if (options.include_usage === true) return body;
    return Buffer.from(
      JSON.stringify({ ...parsed, stream_options: { ...options, include_usage: true } }),
    );
  } catch {
    return body;
  }
}
