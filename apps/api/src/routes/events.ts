import { TaskEvent } from '@patchbay/core';
import type { EventLog } from '@patchbay/store';
import type { TaskService } from '@patchbay/tasks';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ErrorBody, TaskIdParams } from '../schemas.js';

export interface EventRoutesDeps {
  service: TaskService;
  events: EventLog;
  /** Interval of SSE keep-alive comments. @default 15_000 */
  keepAliveMs?: number;
}

const Seq = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const eventRoutes: FastifyPluginAsyncZod<EventRoutesDeps> = async (app, deps) => {
  const keepAliveMs = deps.keepAliveMs ?? 15_000;
  // Live streams end when the server closes: a follower never ends its own (keepOpen), and a
  // server waits for every open response before it stops. Clients reconnect with Last-Event-ID.
  const streams = new Set<AbortController>();
  app.addHook('preClose', async () => {
    for (const stream of streams) stream.abort();
  });
  const querystring = z.strictObject({
    after: Seq.default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(500),
    keepOpen: z
      .enum(['true', 'false'])
      .default('false')
      .describe("SSE only: stay open past a turn's end for the next turns."),
  });
  const headers = z.object({ 'last-event-id': Seq.optional() }).passthrough();
  const response = {
    200: z.object({ events: z.array(TaskEvent), nextAfter: z.number().int() }),
    400: ErrorBody,
    401: ErrorBody,
    404: ErrorBody,
    503: ErrorBody,
  };

  /** Serves one log: a page of JSON, or a live SSE stream with Accept: text/event-stream. */
  async function serve(
    request: FastifyRequest,
    reply: FastifyReply,
    log: string,
    query: {
      after: number;
      limit: number;
      keepOpen: 'true' | 'false';
      lastEventId?: number | undefined;
    },
  ): Promise<{ events: TaskEvent[]; nextAfter: number } | FastifyReply> {
    const after = query.lastEventId ?? query.after;
    if (!(request.headers.accept ?? '').includes('text/event-stream')) {
      const events = await deps.events.read(log, { after, limit: query.limit });
      return { events, nextAfter: events.at(-1)?.seq ?? after };
    }

    // From here on the response is ours: fastify neither serializes nor ends it.
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.write('retry: 2000\n\n');
    const abort = new AbortController();
    streams.add(abort);
    const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), keepAliveMs);
    request.raw.once('close', () => abort.abort());
    try {
      const pastEnd = query.keepOpen === 'true';
      for await (const event of deps.events.follow(log, { after, signal: abort.signal, pastEnd })) {
        if (
          !res.write(`id: ${event.seq}\nevent: ${event.type}\ndata: ${JSON.stringify(event)}\n\n`)
        ) {
          // A slow reader: wait for the socket to drain instead of buffering the whole log.
          await new Promise<void>((resolve) => {
            res.once('drain', resolve);
            abort.signal.addEventListener('abort', () => resolve(), { once: true });
          });
        }
      }
    } catch (err) {
      if (!abort.signal.aborted) request.log.warn({ err }, 'event stream ended with an error');
    } finally {
      streams.delete(abort);
      clearInterval(keepAlive);
      res.end();
    }
    return reply;
  }

  app.get(
    '/v1/tasks/:id/events',
    {
      schema: {
        summary: 'The event log: JSON, or a live SSE stream with Accept: text/event-stream',
        description:
          'As SSE, each event is sent with `id: <seq>`; a reconnect with `Last-Event-ID` resumes after it. ' +
          'The stream closes after the terminal status event of the turn, unless `keepOpen=true`: then ' +
          "it stays open past a turn's end, so a follow-up's turn arrives on the same connection, " +
          'until the client leaves. A task of several attempts logs each attempt apart ' +
          '(`/attempts/:n/events`); its own log then carries the turn status and an `attempt` event ' +
          'per attempt that ends.',
        params: TaskIdParams,
        querystring,
        headers,
        response,
      },
    },
    async (request, reply) => {
      await deps.service.get(request.tenant, request.params.id);
      return serve(request, reply, request.params.id, {
        ...request.query,
        lastEventId: request.headers['last-event-id'],
      });
    },
  );

  app.get(
    '/v1/tasks/:id/attempts/:n/events',
    {
      schema: {
        summary: "One attempt's event log (current turn), as JSON or SSE",
        description: 'Like the task log; for a task of one attempt it is the task log itself.',
        params: TaskIdParams.extend({ n: z.coerce.number().int().min(1).max(100) }),
        querystring,
        headers,
        response,
      },
    },
    async (request, reply) =>
      serve(
        request,
        reply,
        await deps.service.attemptLog(request.tenant, request.params.id, request.params.n),
        { ...request.query, lastEventId: request.headers['last-event-id'] },
      ),
  );
};
