import { isPatchbayError } from '@patchbay/core';
import { APIConnectionError, APIError, RateLimitError } from 'openai';
import { describe, expect, it } from 'vitest';
import {
  AttemptError,
  backoffDelay,
  failure,
  parseRetryAfter,
  resolveRetryOptions,
  runWithRetries,
  sleep,
  toAttemptError,
} from './retry.js';
import { AbortError, isAbortError } from './types.js';

const context = { wire: 'responses' as const, model: 'm' };

describe('retry policy', () => {
  it('doubles the backoff up to the cap and takes at most the jitter fraction off', () => {
    const options = resolveRetryOptions({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0.25 });
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 0))).toEqual([
      100, 200, 400, 800, 1000,
    ]);
    expect(backoffDelay(3, options, () => 1)).toBe(300);
    expect(backoffDelay(3, options, () => 0.5)).toBe(350);
  });

  it('documents its defaults', () => {
    expect(resolveRetryOptions()).toEqual({
      maxAttempts: 6,
      initialDelayMs: 1000,
      maxDelayMs: 30_000,
      jitter: 0.25,
      maxRetryAfterMs: 60_000,
    });
  });

  it('reads retry-after-ms, retry-after seconds and retry-after dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '250' }), now)).toBe(250);
    expect(parseRetryAfter(new Headers({ 'retry-after': '3' }), now)).toBe(3000);
    expect(
      parseRetryAfter(new Headers({ 'retry-after': 'Wed, 01 Jan 2025 00:00:05 GMT' }), now),
    ).toBe(5000);
    expect(parseRetryAfter(new Headers({ 'retry-after': 'soon' }), now)).toBeUndefined();
    expect(parseRetryAfter(new Headers(), now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });

  it('classifies SDK errors: 429/5xx/connection retryable, 4xx not, x-should-retry wins', () => {
    const classify = (err: unknown) => (toAttemptError(err, 'request') as AttemptError).failure;
    expect(
      classify(
        new RateLimitError(
          429,
          { code: 'rate_limit_exceeded' },
          'slow down',
          new Headers({ 'retry-after': '2' }),
        ),
      ),
    ).toMatchObject({
      retryable: true,
      status: 429,
      retryAfterMs: 2000,
    });
    expect(
      classify(APIError.generate(502, { error: {} }, 'bad gateway', new Headers())),
    ).toMatchObject({
      retryable: true,
      status: 502,
    });
    expect(classify(APIError.generate(404, { error: {} }, 'no', new Headers()))).toMatchObject({
      retryable: false,
    });
    expect(
      classify(
        APIError.generate(500, { error: {} }, 'x', new Headers({ 'x-should-retry': 'false' })),
      ),
    ).toMatchObject({ retryable: false });
    expect(classify(new APIConnectionError({ message: 'refused' }))).toMatchObject({
      retryable: true,
      reason: 'connection',
    });
    expect(classify(new SyntaxError('Unexpected end of JSON input'))).toMatchObject({
      retryable: false,
      reason: 'malformed_response',
    });
    expect(
      (toAttemptError(new TypeError('terminated'), 'stream') as AttemptError).failure,
    ).toMatchObject({
      retryable: true,
      reason: 'connection',
    });
    const bug = new RangeError('our own bug');
    expect(toAttemptError(bug, 'request')).toBe(bug);
  });

  it('runs attempts until one succeeds', async () => {
    let calls = 0;
    const retries: number[] = [];
    const result = await runWithRetries(
      async () => {
        calls += 1;
        if (calls < 3) throw new AttemptError(failure('connection', 'flaky', { retryable: true }));
        return 'ok';
      },
      {
        retry: resolveRetryOptions({ initialDelayMs: 1 }),
        idleTimeoutMs: 1000,
        signal: undefined,
        onRetry: (n) => retries.push(n),
        context,
      },
    );
    expect(result).toEqual({ value: 'ok', attempts: 3 });
    expect(retries).toEqual([1, 2]);
  });

  it('ends with model_error when a failure is not retryable', async () => {
    const err = await runWithRetries(
      () => Promise.reject(new AttemptError(failure('http_status', 'bad', { status: 400 }))),
      {
        retry: resolveRetryOptions(),
        idleTimeoutMs: 1000,
        signal: undefined,
        onRetry: undefined,
        context,
      },
    ).catch((e: unknown) => e);
    expect(isPatchbayError(err, 'model_error')).toBe(true);
    expect(err).toMatchObject({
      details: { status: 400, attempts: 1, wire: 'responses', model: 'm' },
    });
  });

  it('abandons an attempt that stops sending heartbeats', async () => {
    let calls = 0;
    const result = await runWithRetries(
      (ctx) => {
        calls += 1;
        if (calls > 1) return Promise.resolve('second');
        return new Promise<string>((_resolve, reject) => {
          ctx.signal.addEventListener('abort', () =>
            reject(new AttemptError(failure('stream_ended_early', 'ended', { retryable: true }))),
          );
        });
      },
      {
        retry: resolveRetryOptions({ initialDelayMs: 1 }),
        idleTimeoutMs: 30,
        signal: undefined,
        onRetry: undefined,
        context,
      },
    );
    expect(result).toEqual({ value: 'second', attempts: 2 });
  });

  it('sleeps abortably, rejecting with AbortError carrying the reason', async () => {
    const controller = new AbortController();
    const started = Date.now();
    setTimeout(() => controller.abort('shutdown'), 20);
    const err = await sleep(10_000, controller.signal).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(1000);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toBe('shutdown');
    expect(isAbortError(err)).toBe(true);
    expect(isAbortError(new DOMException('x', 'AbortError'))).toBe(true);
    expect(isAbortError(new Error('x'))).toBe(false);
  });
});
