import type {
  Attempt,
  DeliveryRequest,
  ScheduleRun,
  ScheduleView as Schedule,
  Task,
  TaskEvent,
  TaskSpec,
  TaskStatus,
} from '@patchbay/core';
import type { IncomingMessage } from 'node:http';
import { parseSse } from './sse.js';

/** The server could not be reached at all (refused, DNS, reset before a response). */
export class UnreachableError extends Error {
  override readonly name = 'UnreachableError';
}

/** The server answered with an error status; `code` is the API's stable error code. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Bearer key; omitted for a keyless local server. */
  apiKey?: string | undefined;
  /** Who the server records as a task's origin (`Patchbay-Client`). @default 'cli' */
  client?: 'cli' | 'mcp';
}

/** One page of `GET /v1/tasks`. */
export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
}

/** How often a dropped event stream is reopened before giving up. */
const MAX_RECONNECTS = 5;

/** A response whose status is a success, its body not read yet. */
interface ApiResponse {
  status: number;
  body: IncomingMessage;
}

async function readAll(body: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/**
 * A thin HTTP client of the Patchbay API over `node:http(s)`, not `fetch`: the first `fetch` of a
 * process loads undici (and compiles its parser), about 0.2 s of a command's start, and most
 * commands make one request and exit. Responses are trusted to match the API's
 * schemas rather than parsed with zod: importing `@patchbay/core` at run time costs the CLI about
 * 0.4 s per invocation, and the server already validates what it serializes.
 */
export class PatchbayClient {
  private readonly baseUrl: string;
  private readonly headers: Record<string, string>;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.headers = {
      'patchbay-client': options.client ?? 'cli',
      ...(options.apiKey ? { authorization: `Bearer ${options.apiKey}` } : {}),
    };
  }

  submit(spec: TaskSpec): Promise<Task> {
    return this.json('POST', '/v1/tasks', spec);
  }

  get(id: string): Promise<Task> {
    return this.json('GET', `/v1/tasks/${encodeURIComponent(id)}`);
  }

  list(query: { status?: TaskStatus; cursor?: string; limit?: number } = {}): Promise<TaskPage> {
    const params = new URLSearchParams();
    if (query.status) params.set('status', query.status);
    if (query.cursor) params.set('cursor', query.cursor);
    if (query.limit) params.set('limit', String(query.limit));
    const qs = params.size > 0 ? `?${params.toString()}` : '';
    return this.json('GET', `/v1/tasks${qs}`);
  }

  /** The attempts of the task's current turn. */
  attempts(id: string): Promise<{ turn: number; chosen: number | null; attempts: Attempt[] }> {
    return this.json('GET', `/v1/tasks/${encodeURIComponent(id)}/attempts`);
  }

  /** A follow-up: the task's next turn. */
  reply(id: string, prompt: string): Promise<Task> {
    return this.json('POST', `/v1/tasks/${encodeURIComponent(id)}/messages`, { prompt });
  }

  /** Pushes the task's result to a branch (and opens a pull request); waits for the outcome. */
  deliver(id: string, request: DeliveryRequest): Promise<Task> {
    return this.json('POST', `/v1/tasks/${encodeURIComponent(id)}/deliver?wait=60`, request);
  }

  /** The caller's cached environments (of one repository when given). */
  environments(repo?: string): Promise<{ environments: CachedEnvironment[] }> {
    return this.json('GET', `/v1/environments${repoQuery(repo)}`);
  }

  dropEnvironments(repo?: string): Promise<{ dropped: number }> {
    return this.json('DELETE', `/v1/environments${repoQuery(repo)}`);
  }

  /** A schedule: `spec` submitted each time `cron` comes round in `timezone`. */
  createSchedule(input: { cron: string; timezone?: string; spec: TaskSpec }): Promise<Schedule> {
    return this.json('POST', '/v1/schedules', input);
  }

  schedules(): Promise<{ schedules: Schedule[] }> {
    return this.json('GET', '/v1/schedules');
  }

  scheduleRuns(id: string): Promise<{ runs: ScheduleRun[] }> {
    return this.json('GET', `/v1/schedules/${encodeURIComponent(id)}/runs`);
  }

  setSchedulePaused(id: string, paused: boolean): Promise<Schedule> {
    return this.json(
      'POST',
      `/v1/schedules/${encodeURIComponent(id)}/${paused ? 'pause' : 'resume'}`,
    );
  }

  async deleteSchedule(id: string): Promise<void> {
    const res = await this.request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
    res.body.resume();
  }

  cancel(id: string): Promise<Task> {
    return this.json('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`);
  }

  /**
   * The task's patch (or one attempt's) as raw bytes (it may hold binary hunks, so never decoded
   * here).
   */
  async patch(id: string, attempt?: number): Promise<Uint8Array> {
    const path = attempt === undefined ? '/patch' : `/attempts/${attempt}/patch`;
    const res = await this.request('GET', `/v1/tasks/${encodeURIComponent(id)}${path}`);
    return new Uint8Array(await readAll(res.body));
  }

  /** Every event recorded so far, paging through the JSON form of the log. */
  async events(id: string): Promise<TaskEvent[]> {
    const all: TaskEvent[] = [];
    let after = 0;
    for (;;) {
      const page = await this.json<{ events: TaskEvent[]; nextAfter: number }>(
        'GET',
        `/v1/tasks/${encodeURIComponent(id)}/events?after=${after}&limit=1000`,
      );
      all.push(...page.events);
      if (page.events.length < 1000) return all;
      after = page.nextAfter;
    }
  }

  /**
   * The live event stream (SSE) until the end of turn `untilTurn` (default 1: the first terminal
   * status event). A dropped connection is reopened with `Last-Event-ID`, so no event is lost or
   * repeated across reconnects. With `fromTurn`, events before that turn's `turn` event are
   * skipped.
   */
  async *follow(
    id: string,
    options: { signal?: AbortSignal; fromTurn?: number; untilTurn?: number } = {},
  ): AsyncGenerator<TaskEvent> {
    let after = 0;
    let started = (options.fromTurn ?? 1) <= 1;
    const untilTurn = options.untilTurn ?? 1;
    let turn = 1;
    let failures = 0;
    for (;;) {
      let res: ApiResponse;
      try {
        res = await this.request(
          'GET',
          // Kept open past a turn's end: this loop decides when it has seen enough.
          `/v1/tasks/${encodeURIComponent(id)}/events?keepOpen=true`,
          undefined,
          {
            accept: 'text/event-stream',
            ...(after > 0 ? { 'last-event-id': String(after) } : {}),
          },
          options.signal,
        );
      } catch (err) {
        if (err instanceof UnreachableError && after > 0 && ++failures <= MAX_RECONNECTS) {
          await sleep(500 * failures, options.signal);
          continue;
        }
        throw err;
      }
      try {
        for await (const message of parseSse(res.body)) {
          if (message.data === '') continue;
          const event = JSON.parse(message.data) as TaskEvent;
          after = event.seq;
          failures = 0;
          if (event.type === 'turn') turn = event.turn;
          started ||= turn === options.fromTurn;
          if (!started) continue;
          yield event;
          if (
            turn >= untilTurn &&
            event.type === 'status' &&
            ['succeeded', 'failed', 'cancelled'].includes(event.status)
          )
            return;
        }
      } catch (err) {
        if (options.signal?.aborted) throw err;
        // The connection broke mid-stream: fall through and resume after the last seq.
      }
      if (++failures > MAX_RECONNECTS)
        throw new UnreachableError(`event stream of ${id} kept closing before the task ended`);
      await sleep(500 * failures, options.signal);
    }
  }

  /**
   * One request, whatever the API answers: an error status comes back as the API's error body
   * instead of a throw (for `patchbay mcp`, whose tools report errors to the model).
   */
  async exchange(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: string }> {
    try {
      const res = await this.request(method, path, body);
      return { status: res.status, body: (await readAll(res.body)).toString('utf8') };
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      return {
        status: err.status,
        body: JSON.stringify({ error: { code: err.code, message: err.message } }),
      };
    }
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body);
    return JSON.parse((await readAll(res.body)).toString('utf8')) as T;
  }

  private async request(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
    signal?: AbortSignal,
  ): Promise<ApiResponse> {
    const url = new URL(`${this.baseUrl}${path}`);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    let res: IncomingMessage;
    try {
      const { request } =
        url.protocol === 'https:' ? await import('node:https') : await import('node:http');
      res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(url, {
          method,
          headers: {
            ...this.headers,
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': payload.length }),
            ...headers,
          },
          ...(signal ? { signal } : {}),
        });
        req.on('response', resolve);
        req.on('error', reject);
        req.end(payload);
      });
    } catch (err) {
      if (signal?.aborted) throw err;
      const { code, message } = err as { code?: string; message?: string };
      throw new UnreachableError(`cannot reach ${this.baseUrl}: ${code ?? message}`);
    }
    const status = res.statusCode ?? 0;
    if (status >= 200 && status < 300) return { status, body: res };
    const text = (await readAll(res).catch(() => Buffer.alloc(0))).toString('utf8');
    let code = `http_${status}`;
    let message = text.trim() || (res.statusMessage ?? '');
    try {
      const parsed = JSON.parse(text) as { error?: { code?: string; message?: string } };
      if (parsed.error?.code) code = parsed.error.code;
      if (parsed.error?.message) message = parsed.error.message;
    } catch {
      // Not the API's JSON error shape (a proxy's HTML page, say): keep the raw text.
    }
    throw new ApiError(status, code, message);
  }
}

/** A cached environment as the API lists it. */
export interface CachedEnvironment {
  key: string;
  repo: string;
  bytes: number;
  lastUsedAt: string;
}

const repoQuery = (repo: string | undefined): string =>
  repo === undefined ? '' : `?repo=${encodeURIComponent(repo)}`;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
