import { type ErrorCode, PatchbayError, httpStatusFor } from '@patchbay/core';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

/** fastify's own request errors, by code, and what a client is told about them. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'validation_error',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'validation_error',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'validation_error',
  FST_ERR_CTP_BODY_TOO_LARGE: 'payload_too_large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'unsupported_media_type',
  FST_ERR_CTP_INVALID_TYPE: 'unsupported_media_type',
  FST_ERR_VALIDATION: 'validation_error',
  FST_ERR_BAD_URL: 'not_found',
  FST_ERR_MAX_PARAM_LENGTH: 'validation_error',
  FST_ERR_ASYNC_CONSTRAINT: 'validation_error',
};

/**
 * Whether a call failed because its Redis connection went away: a call in flight when Redis
 * stops fails before the client has marked the connection down.
 */
function lostRedis(err: Error & { code?: string }): boolean {
  return (
    err.message === 'Connection is closed.' ||
    err.name === 'MaxRetriesPerRequestError' ||
    ['ECONNRESET', 'ECONNREFUSED', 'EPIPE'].includes(err.code ?? '')
  );
}

/**
 * The one place errors become HTTP answers: `{ error: { code, message, details? } }` with the
 * status of the code. Bad input never reaches a 500; an unexpected error does, logged.
 */
export function installErrorHandling(app: FastifyInstance, isRedisDown: () => boolean): void {
  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    let code: ErrorCode;
    let message: string;
    let details: unknown;
    if (err instanceof PatchbayError) {
      ({ code, message } = err);
      details = err.details;
    } else if (hasZodFastifySchemaValidationErrors(err)) {
      code = 'validation_error';
      message = 'the request does not match the schema';
      details = err.validation.map((v) => ({
        where: err.validationContext,
        path: v.instancePath || '/',
        message: v.message,
      }));
    } else if (err.code !== undefined && FASTIFY_CODES[err.code] !== undefined) {
      code = FASTIFY_CODES[err.code]!;
      message = err.message;
    } else if (err.statusCode === 429) {
      code = 'rate_limited';
      message = err.message;
    } else if (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500) {
      code =
        err.statusCode === 413
          ? 'payload_too_large'
          : err.statusCode === 415
            ? 'unsupported_media_type'
            : 'validation_error';
      message = err.message;
    } else if (isRedisDown() || lostRedis(err)) {
      code = 'unavailable';
      message = 'the task store is unavailable; try again shortly';
    } else {
      request.log.error({ err }, 'unhandled error');
      code = 'internal_error';
      message = 'internal error';
    }
    const status = httpStatusFor(code);
    if (code === 'unavailable') void reply.header('retry-after', '1');
    if (code === 'payload_too_large' && !request.raw.complete) {
      // The body was refused unread: read the rest and drop it, so that its sender, still
      // writing, gets to read this answer instead of a reset connection.
      await drain(request.raw);
      void reply.header('connection', 'close');
    }
    return reply
      .code(status)
      .send({ error: details === undefined ? { code, message } : { code, message, details } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({
      error: {
        code: 'not_found',
        message: `no route ${request.method} ${request.url.slice(0, 200)}`,
      },
    }),
  );
}

/** How much of a refused body is read and dropped, and for how long, before the answer. */
const DRAIN_BYTES = 64 * 1024 * 1024;
const DRAIN_MS = 10_000;

async function drain(request: IncomingMessage): Promise<void> {
  if (request.complete || request.destroyed) return;
  await new Promise<void>((resolve) => {
    let seen = 0;
    const done = (): void => {
      clearTimeout(timer);
      request.off('data', onData).off('end', done).off('error', done).off('close', done);
      resolve();
    };
    const onData = (chunk: Buffer): void => {
      seen += chunk.length;
      if (seen > DRAIN_BYTES) done();
    };
    const timer = setTimeout(done, DRAIN_MS);
    request.on('data', onData).once('end', done).once('error', done).once('close', done);
    request.resume();
  });
}

/**
 * fastify's `frameworkErrors` option: errors the router raises before any route or error handler
 * exists (a malformed percent-escape, an over-long id). Without it fastify answers them with a
 * body of its own shape (and a 414 for long ids), so they are given ours here.
 */
export function frameworkErrors(
  err: FastifyError,
  _request: FastifyRequest,
  reply: FastifyReply,
): void {
  const code = FASTIFY_CODES[err.code] ?? 'validation_error';
  // An id longer than the router allows keeps the status that says so: 414 URI Too Long.
  const status = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 414 : httpStatusFor(code);
  void reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .send(JSON.stringify({ error: { code, message: err.message.slice(0, 300) } }));
}

/**
 * fastify's `clientErrorHandler` option: requests Node's HTTP parser refuses (headers past the
 * size limit, broken framing, bytes that are not HTTP). fastify's default answers with a body of
 * its own shape; clients of this API parse `{ error: { code, message } }` everywhere.
 */
export function clientErrorHandler(err: NodeJS.ErrnoException, socket: Socket): void {
  // A reset connection, or one already answered, has nobody left to tell.
  if (err.code === 'ECONNRESET' || socket.destroyed || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [
          431,
          'Request Header Fields Too Large',
          'payload_too_large',
          'the request headers are too large',
        ]
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'validation_error', 'the request took too long to arrive']
        : [400, 'Bad Request', 'validation_error', 'the request is not valid HTTP'];
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
