import { PatchbayError } from '@patchbay/core';
import {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';
import { AbortError, type AttemptFailure, type ModelWire, isAbortError } from './types.js';

/** Retry policy of one turn. Every field has a default; see {@link resolveRetryOptions}. */
export interface RetryOptions {
  /**
   * Attempts per turn, the first included.
   * @default 6
   */
  maxAttempts?: number | undefined;
  /**
   * Backoff before the second attempt; it doubles with each further attempt.
   * @default 1000
   */
  initialDelayMs?: number | undefined;
  /**
   * Longest computed backoff.
   * @default 30000
   */
  maxDelayMs?: number | undefined;
  /**
   * Fraction of each computed backoff removed at random, so workers hit by the same outage do not
   * come back in lockstep.
   * @default 0.25
   */
  jitter?: number | undefined;
  /**
   * Longest `retry-after` honoured. A server asking for a longer wait fails the turn at once:
   * sitting idle that long would hold a worker slot for a task that is likely to run out of time.
   * @default 60000
   */
  maxRetryAfterMs?: number | undefined;
}

export type ResolvedRetryOptions = Required<{ [K in keyof RetryOptions]: number }>;

export function resolveRetryOptions(options: RetryOptions = {}): ResolvedRetryOptions {
  const resolved = {
    maxAttempts: options.maxAttempts ?? 6,
    initialDelayMs: options.initialDelayMs ?? 1000,
    maxDelayMs: options.maxDelayMs ?? 30_000,
    jitter: options.jitter ?? 0.25,
    maxRetryAfterMs: options.maxRetryAfterMs ?? 60_000,
  };
  if (!Number.isInteger(resolved.maxAttempts) || resolved.maxAttempts < 1) {
    throw new RangeError(`maxAttempts must be a whole number ≥ 1, got ${resolved.maxAttempts}`);
  }
  if (resolved.jitter < 0 || resolved.jitter > 1) {
    throw new RangeError(`jitter must be between 0 and 1, got ${resolved.jitter}`);
  }
  return resolved;
}

/** The backoff before retry number `retry` (1 for the first retry), jitter applied. */
export function backoffDelay(
  retry: number,
  options: ResolvedRetryOptions,
  random: () => number = Math.random,
): number {
  const base = Math.min(options.maxDelayMs, options.initialDelayMs * 2 ** (retry - 1));
  return Math.round(base * (1 - options.jitter * random()));
}

/**
 * The wait a server asks for: `retry-after-ms` (OpenAI's own, milliseconds), else `retry-after`
 * in seconds or as an HTTP date. Undefined when absent or unreadable.
 */
export function parseRetryAfter(
  headers: Headers | undefined,
  now: number = Date.now(),
): number | undefined {
  const ms = headers?.get('retry-after-ms');
  if (ms != null && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers?.get('retry-after');
  if (after == null || after.trim() === '') return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return seconds >= 0 ? seconds * 1000 : undefined;
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Why an attempt failed, as the retry policy sees it. */
export interface Failure extends AttemptFailure {
  retryable: boolean;
  /** What went wrong, for logs and `model_error` details. */
  reason:
    | 'http_status'
    | 'connection'
    | 'timeout'
    | 'stream_ended_early'
    | 'stream_error'
    | 'malformed_response';
  retryAfterMs: number | undefined;
  requestId: string | undefined;
}

/** Thrown by a wire when an attempt fails in a way the retry policy must judge. */
export class AttemptError extends Error {
  override readonly name = 'AttemptError';
  constructor(
    readonly failure: Failure,
    cause?: unknown,
  ) {
    super(failure.message, cause === undefined ? undefined : { cause });
  }
}

export function failure(
  reason: Failure['reason'],
  message: string,
  extra: Partial<Omit<Failure, 'reason' | 'message'>> = {},
): Failure {
  return {
    reason,
    message,
    retryable: extra.retryable ?? false,
    status: extra.status,
    code: extra.code,
    retryAfterMs: extra.retryAfterMs,
    requestId: extra.requestId,
  };
}

/** Error codes a server puts in a stream or body when the failure is transient. */
const TRANSIENT_CODE =
  /rate_limit|server_error|internal_error|overloaded|unavailable|timeout|slow_down/i;

/**
 * Whether an error reported inside a stream (Responses `error` / `response.failed`, a Chat
 * Completions `{"error": …}` chunk) is worth retrying: when it names a transient code, or none.
 */
export function streamErrorFailure(
  code: string | null | undefined,
  message: string,
  requestId?: string | null,
): Failure {
  const known = code ?? undefined;
  return failure('stream_error', message, {
    code: known,
    retryable: known === undefined || TRANSIENT_CODE.test(known),
    // Responses streams carry rate limits as "…Please try again in 1.2s." with no header.
    retryAfterMs: known?.includes('rate_limit') ? tryAgainIn(message) : undefined,
    requestId: requestId ?? undefined,
  });
}

function tryAgainIn(message: string): number | undefined {
  const match = /try again in (\d+(?:\.\d+)?)\s*(ms|s)\b/i.exec(message);
  if (!match) return undefined;
  const value = Number(match[1]);
  return match[2]?.toLowerCase() === 'ms' ? value : value * 1000;
}

/**
 * Turns what the SDK (or the body stream under it) threw into an {@link AttemptError}. `phase`
 * says whether the response had started: an unknown error while reading the body is a cut
 * connection (undici's `TypeError: terminated`).
 */
export function toAttemptError(err: unknown, phase: 'request' | 'stream'): unknown {
  // The driver decides what an abort means (the caller's signal or our idle watchdog).
  if (err instanceof APIUserAbortError || isAbortError(err)) return err;
  if (err instanceof APIConnectionTimeoutError) {
    return new AttemptError(failure('timeout', err.message, { retryable: true }), err);
  }
  if (err instanceof APIConnectionError) {
    const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
    return new AttemptError(
      failure('connection', `${err.message}${cause}`, { retryable: true }),
      err,
    );
  }
  if (err instanceof APIError) {
    // `instanceof` loses the class's type parameters; these are what the SDK documents.
    const status = err.status as number | undefined;
    const headers = err.headers as Headers | undefined;
    const code = typeof err.code === 'string' ? err.code : undefined;
    if (status === undefined) {
      return new AttemptError(streamErrorFailure(code, err.message, err.requestID), err);
    }
    return new AttemptError(httpFailure(status, err.message, code, headers), err);
  }
  if (err instanceof SyntaxError) {
    return new AttemptError(
      failure('malformed_response', `the server sent malformed JSON: ${err.message}`),
      err,
    );
  }
  if (err instanceof OpenAIError) {
    return new AttemptError(failure('malformed_response', err.message), err);
  }
  if (phase === 'stream' || err instanceof TypeError) {
    const detail = err instanceof Error ? describeCause(err) : String(err);
    return new AttemptError(
      failure('connection', `the connection failed: ${detail}`, { retryable: true }),
      err,
    );
  }
  return err;
}

function describeCause(err: Error): string {
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  return `${err.message}${cause}`;
}

function httpFailure(
  status: number,
  message: string,
  code: string | undefined,
  headers: Headers | undefined,
): Failure {
  const shouldRetry = headers?.get('x-should-retry');
  let retryable = status === 408 || status === 429 || status >= 500;
  // An exhausted quota answers 429 too, but waiting does not refill it.
  if (code === 'insufficient_quota') retryable = false;
  // OpenAI's explicit hint wins over the status, as in its own SDK.
  if (shouldRetry === 'true') retryable = true;
  if (shouldRetry === 'false') retryable = false;
  return failure('http_status', message, {
    status,
    code,
    retryable,
    retryAfterMs: parseRetryAfter(headers),
    requestId: headers?.get('x-request-id') ?? undefined,
  });
}

/** Handed to each attempt: its own signal, and a heartbeat that keeps the idle watchdog quiet. */
export interface AttemptContext {
  signal: AbortSignal;
  /** Call on every byte of progress (each stream event). */
  heartbeat(): void;
  /** From 1. */
  attempt: number;
}

export interface RetryRunOptions {
  retry: ResolvedRetryOptions;
  /** Silence after which an attempt is abandoned and retried. */
  idleTimeoutMs: number;
  signal: AbortSignal | undefined;
  onRetry: ((attempt: number, delayMs: number, failure: Failure) => void) | undefined;
  /** Facts added to a `model_error`'s details. */
  context: { wire: ModelWire; model: string };
}

/**
 * Runs `attempt` until it succeeds, a failure is not retryable, or attempts run out. Rejects with
 * {@link AbortError} as soon as `signal` aborts (also while sleeping), with
 * `PatchbayError('model_error')` when the model cannot answer, and with anything else an attempt
 * throws (a listener's error, a bug) untouched.
 */
export async function runWithRetries<T>(
  attempt: (ctx: AttemptContext) => Promise<T>,
  options: RetryRunOptions,
): Promise<{ value: T; attempts: number }> {
  const { retry, signal } = options;
  for (let n = 1; ; n++) {
    if (signal?.aborted) throw new AbortError(signal.reason);
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    let idle = false;
    let timer: NodeJS.Timeout | undefined;
    const heartbeat = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        idle = true;
        controller.abort(new Error('stream idle timeout'));
      }, options.idleTimeoutMs);
    };
    let result: Failure;
    let cause: unknown;
    try {
      heartbeat();
      return {
        value: await attempt({ signal: controller.signal, heartbeat, attempt: n }),
        attempts: n,
      };
    } catch (err) {
      if (signal?.aborted) throw new AbortError(signal.reason);
      if (idle) {
        result = failure('timeout', `no data from the server for ${options.idleTimeoutMs} ms`, {
          retryable: true,
        });
      } else if (err instanceof AttemptError) {
        result = err.failure;
      } else {
        throw err;
      }
      cause = err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }

    if (!result.retryable || n >= retry.maxAttempts) {
      throw modelError(result, n, options.context, cause);
    }
    let delay = result.retryAfterMs ?? backoffDelay(n, retry);
    if (result.retryAfterMs !== undefined && result.retryAfterMs > retry.maxRetryAfterMs) {
      throw modelError(
        {
          ...result,
          retryable: false,
          message: `${result.message} (the server asked to wait ${Math.ceil(result.retryAfterMs / 1000)} s, more than the ${Math.ceil(retry.maxRetryAfterMs / 1000)} s allowed)`,
        },
        n,
        options.context,
        cause,
      );
    }
    delay = Math.max(0, Math.round(delay));
    options.onRetry?.(n, delay, result);
    await sleep(delay, signal);
  }
}

function modelError(
  result: Failure,
  attempts: number,
  context: RetryRunOptions['context'],
  cause: unknown,
): PatchbayError {
  const tried = attempts > 1 ? ` after ${attempts} attempts` : '';
  // The usual cause of a 404 here is a compatible server without the Responses API.
  const hint =
    result.status === 404 && context.wire === 'responses' && result.code !== 'model_not_found'
      ? ' (if the server has no /v1/responses, set PATCHBAY_MODEL_WIRE=chat)'
      : '';
  return new PatchbayError('model_error', `model call failed${tried}: ${result.message}${hint}`, {
    cause,
    details: {
      status: result.status,
      code: result.code,
      reason: result.reason,
      retryable: result.retryable,
      attempts,
      wire: context.wire,
      model: context.model,
      requestId: result.requestId,
    },
  });
}

/** Resolves after `ms`, or rejects with {@link AbortError} as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError(signal.reason));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortError(signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
