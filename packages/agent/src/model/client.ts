import type { Config } from '@patchbay/core';
import OpenAI from 'openai';
import { buildChatBody, chatAttempt } from './chat-wire.js';
import { buildResponsesBody, responsesAttempt } from './responses-wire.js';
import {
  type ResolvedRetryOptions,
  type RetryOptions,
  resolveRetryOptions,
  runWithRetries,
} from './retry.js';
import type { ModelClient, ModelWire, TurnEvent, TurnRequest, TurnResult } from './types.js';

const DEFAULT_BASE_URL = 'https://api.openai.com/v1';

export interface ModelClientOptions {
  /** The model a turn uses when it names none (`PATCHBAY_MODEL`). */
  model: string;
  /**
   * Wire protocol (`PATCHBAY_MODEL_WIRE`): the Responses API, or Chat Completions for servers
   * without `/v1/responses`.
   * @default 'responses'
   */
  wire?: ModelWire | undefined;
  /**
   * API key (`OPENAI_API_KEY`). Local servers that check none (Ollama, llama.cpp) need none.
   * @default unset: a placeholder is sent
   */
  apiKey?: string | undefined;
  /**
   * Base URL of the API, `/v1` included (`OPENAI_BASE_URL`).
   * @default 'https://api.openai.com/v1'
   */
  baseURL?: string | undefined;
  /** Retry policy; see {@link RetryOptions} for each default. */
  retry?: RetryOptions | undefined;
  /**
   * Silence after which an attempt is abandoned and retried: no response headers, or no stream
   * event, for this long. Reasoning models can think for minutes between events.
   * @default 300000
   */
  streamIdleTimeoutMs?: number | undefined;
  /**
   * Where the SDK logs (failed requests, unparseable stream data). A pino logger fits.
   * @default console
   */
  logger?: ModelLogger | undefined;
  /**
   * The SDK's log level; `info` logs every request, `debug` their (redacted) headers too.
   * @default 'warn'
   */
  logLevel?: 'off' | 'error' | 'warn' | 'info' | 'debug' | undefined;
}

/** The structural logger the SDK accepts. */
export interface ModelLogger {
  error(message: string, ...rest: unknown[]): void;
  warn(message: string, ...rest: unknown[]): void;
  info(message: string, ...rest: unknown[]): void;
  debug(message: string, ...rest: unknown[]): void;
}

export interface ResolvedModelClientOptions {
  model: string;
  wire: ModelWire;
  apiKey: string | undefined;
  baseURL: string;
  retry: ResolvedRetryOptions;
  streamIdleTimeoutMs: number;
  logger: ModelLogger | undefined;
  logLevel: 'off' | 'error' | 'warn' | 'info' | 'debug';
}

function resolveModelClientOptions(options: ModelClientOptions): ResolvedModelClientOptions {
  if (options.model.trim() === '') throw new RangeError('a default model name is required');
  const streamIdleTimeoutMs = options.streamIdleTimeoutMs ?? 300_000;
  if (!(streamIdleTimeoutMs > 0)) {
    throw new RangeError(`streamIdleTimeoutMs must be positive, got ${streamIdleTimeoutMs}`);
  }
  return {
    model: options.model,
    wire: options.wire ?? 'responses',
    apiKey: options.apiKey,
    baseURL: options.baseURL ?? DEFAULT_BASE_URL,
    retry: resolveRetryOptions(options.retry),
    streamIdleTimeoutMs,
    logger: options.logger,
    // Explicit, so the SDK does not read OPENAI_LOG from the environment.
    logLevel: options.logLevel ?? 'warn',
  };
}

/** The client options that Patchbay's config (`config.model`) determines. */
export function modelClientOptionsFromConfig(model: Config['model']): ModelClientOptions {
  return { model: model.name, wire: model.wire, apiKey: model.apiKey, baseURL: model.baseURL };
}

/**
 * Builds the OpenAI SDK client the model client runs on. Everything is passed explicitly so the
 * SDK reads no environment variable of its own, and its retries are off: the policy is ours.
 */
function createOpenAI(options: ResolvedModelClientOptions): OpenAI {
  return new OpenAI({
    // The SDK refuses to start without a key; servers that check none ignore this one.
    apiKey: options.apiKey ?? 'patchbay-no-key',
    baseURL: options.baseURL,
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: options.streamIdleTimeoutMs,
    logLevel: options.logLevel,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
  });
}

/** A {@link ModelClient} speaking the configured wire through the official `openai` SDK. */
class OpenAIModelClient implements ModelClient {
  readonly wire: ModelWire;
  readonly defaultModel: string;
  readonly #openai: OpenAI;
  readonly #options: ResolvedModelClientOptions;

  /** `openai` must be built with `maxRetries: 0` (see {@link createOpenAI}). */
  constructor(openai: OpenAI, options: ResolvedModelClientOptions) {
    this.#openai = openai;
    this.#options = options;
    this.wire = options.wire;
    this.defaultModel = options.model;
  }

  async turn(request: TurnRequest): Promise<TurnResult> {
    const model = request.model ?? this.defaultModel;
    const emit = (event: TurnEvent) => request.onEvent?.(event);
    const openai = this.#openai;
    const { retry, streamIdleTimeoutMs } = this.#options;
    // The body is built once: every retry resends exactly the same request.
    let attempt: Parameters<typeof runWithRetries<Omit<TurnResult, 'attempts'>>>[0];
    if (this.wire === 'responses') {
      const body = buildResponsesBody(request, model);
      attempt = (ctx) => responsesAttempt(openai, body, emit, ctx);
    } else {
      const body = buildChatBody(request, model);
      attempt = (ctx) => chatAttempt(openai, body, emit, ctx);
    }
    const { value, attempts } = await runWithRetries(attempt, {
      retry,
      idleTimeoutMs: streamIdleTimeoutMs,
      signal: request.signal,
      onRetry: (n, delayMs, failure) =>
        emit({
          type: 'retry',
          attempt: n,
          maxAttempts: retry.maxAttempts,
          delayMs,
          error: { message: failure.message, status: failure.status, code: failure.code },
        }),
      context: { wire: this.wire, model },
    });
    return { ...value, attempts };
  }
}

/** Builds the model client from options such as {@link modelClientOptionsFromConfig} returns. */
export function createModelClient(options: ModelClientOptions): ModelClient {
  const resolved = resolveModelClientOptions(options);
  return new OpenAIModelClient(createOpenAI(resolved), resolved);
}
