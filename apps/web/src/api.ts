import type {
  AgentRuntime,
  Attempt,
  ScheduleRun,
  ScheduleSpec,
  ScheduleView,
  TaskEvent,
  TaskSpec,
  TaskStatus,
  TaskView,
} from '@patchbay/core';
import { EventSourceParserStream } from 'eventsource-parser/stream';

/** The API answered with an error: its status, stable code, message and details. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

const KEY_ITEM = 'patchbay.apiKey';

/** Dispatched on `window` when the API refuses the tab's key (or asks for one). */
export const UNAUTHORIZED_EVENT = 'patchbay:unauthorized';

/** The API key of this browser tab: `sessionStorage`, gone when the tab closes. */
export const session = {
  key: (): string | null => sessionStorage.getItem(KEY_ITEM),
  signIn: (key: string): void => sessionStorage.setItem(KEY_ITEM, key.trim()),
  signOut: (): void => sessionStorage.removeItem(KEY_ITEM),
};

export interface TaskPage {
  tasks: TaskView[];
  nextCursor: string | null;
}

/** An agent runtime the server offers (`GET /v1/runtimes`). */
export interface Runtime {
  name: AgentRuntime;
  summary: string;
  default: boolean;
}

export interface AttemptList {
  turn: number;
  chosen: number | null;
  attempts: Attempt[];
}

const path = (id: string, rest = ''): string => `/v1/tasks/${encodeURIComponent(id)}${rest}`;

async function errorOf(res: Response): Promise<ApiError> {
  if (res.status === 401) window.dispatchEvent(new Event(UNAUTHORIZED_EVENT));
  try {
    const body = (await res.json()) as {
      error?: { code?: string; message?: string; details?: unknown };
    };
    if (body.error?.code)
      return new ApiError(
        res.status,
        body.error.code,
        body.error.message ?? '',
        body.error.details,
      );
  } catch {
    // Not the API's error shape (a proxy's page, say).
  }
  return new ApiError(res.status, 'http_error', `${res.status} ${res.statusText}`);
}

/** The tab's key as a header, when it has one. */
function authorization(): Record<string, string> {
  const key = session.key();
  return key ? { authorization: `Bearer ${key}` } : {};
}

/** Every request of the page, with the tab's key. */
async function request(method: string, url: string, body?: unknown): Promise<Response> {
  // The server records the page as the origin of the tasks it submits.
  const headers: Record<string, string> = { ...authorization(), 'patchbay-client': 'page' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, {
    method,
    headers,
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw await errorOf(res);
  return res;
}

const json = async <T>(method: string, url: string, body?: unknown): Promise<T> =>
  (await request(method, url, body)).json() as Promise<T>;

export const api = {
  list(query: { status?: TaskStatus | undefined; cursor?: string | undefined; limit?: number }) {
    const params = new URLSearchParams({ limit: String(query.limit ?? 20) });
    if (query.status) params.set('status', query.status);
    if (query.cursor) params.set('cursor', query.cursor);
    return json<TaskPage>('GET', `/v1/tasks?${params.toString()}`);
  },
  get: (id: string) => json<TaskView>('GET', path(id)),
  runtimes: async () => (await json<{ runtimes: Runtime[] }>('GET', '/v1/runtimes')).runtimes,
  submit: (spec: TaskSpec) => json<TaskView>('POST', '/v1/tasks', spec),
  cancel: (id: string) => json<TaskView>('POST', path(id, '/cancel')),
  followUp: (id: string, prompt: string) =>
    json<TaskView>('POST', path(id, '/messages'), { prompt }),
  attempts: (id: string) => json<AttemptList>('GET', path(id, '/attempts')),
  choose: (id: string, n: number) => json<TaskView>('POST', path(id, `/attempts/${n}/choose`)),
  /** The task's patch as text. */
  patch: async (id: string) => (await request('GET', path(id, '/patch'))).text(),
  schedules: async () =>
    (await json<{ schedules: ScheduleView[] }>('GET', '/v1/schedules')).schedules,
  addSchedule: (spec: ScheduleSpec) => json<ScheduleView>('POST', '/v1/schedules', spec),
  scheduleRuns: async (id: string) =>
    (await json<{ runs: ScheduleRun[] }>('GET', `/v1/schedules/${encodeURIComponent(id)}/runs`))
      .runs,
  pauseSchedule: (id: string, paused: boolean) =>
    json<ScheduleView>(
      'POST',
      `/v1/schedules/${encodeURIComponent(id)}/${paused ? 'pause' : 'resume'}`,
    ),
  deleteSchedule: async (id: string) => {
    await request('DELETE', `/v1/schedules/${encodeURIComponent(id)}`);
  },
  /** One attempt's cumulative patch as text. */
  attemptPatch: async (id: string, n: number) =>
    (await request('GET', path(id, `/attempts/${n}/patch`))).text(),
};

export type Connection = 'connecting' | 'open' | 'reconnecting' | 'closed';

export interface FollowOptions {
  /** Events at or below this seq are not sent again. */
  after: number;
  signal: AbortSignal;
  onEvents: (events: TaskEvent[]) => void;
  onConnection: (state: Connection) => void;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });

/**
 * Follows a task's log live over SSE (through `fetch`, so the key goes in a header, which
 * `EventSource` cannot send), across turns, until `signal` aborts. A dropped stream is reopened
 * with `Last-Event-ID` set to the last event seen, with backoff; events come in small batches
 * (one per animation frame at most) so that a long log does not re-render once per line.
 * An error answer (404 for a task that is not the caller's) ends it with that error.
 */
export async function followEvents(id: string, options: FollowOptions): Promise<void> {
  const { signal } = options;
  let last = options.after;
  let failures = 0;
  while (!signal.aborted) {
    options.onConnection(failures === 0 ? 'connecting' : 'reconnecting');
    try {
      const headers = {
        accept: 'text/event-stream',
        'last-event-id': String(last),
        ...authorization(),
      };
      const res = await fetch(path(id, '/events?keepOpen=true'), { headers, signal });
      if (!res.ok) throw await errorOf(res);
      options.onConnection('open');
      failures = 0;
      const reader = res
        .body!.pipeThrough(new TextDecoderStream())
        .pipeThrough(new EventSourceParserStream())
        .getReader();
      let batch: TaskEvent[] = [];
      let scheduled = false;
      const flush = (): void => {
        scheduled = false;
        if (batch.length === 0) return;
        const events = batch;
        batch = [];
        options.onEvents(events);
      };
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const event = JSON.parse(value.data) as TaskEvent;
          if (event.seq <= last) continue;
          last = event.seq;
          batch.push(event);
          if (!scheduled) {
            scheduled = true;
            requestAnimationFrame(flush);
          }
        }
      } finally {
        flush();
      }
    } catch (err) {
      if (signal.aborted) break;
      if (err instanceof ApiError && err.status < 500 && err.status !== 429) {
        options.onConnection('closed');
        throw err;
      }
    }
    if (signal.aborted) break;
    failures++;
    options.onConnection('reconnecting');
    await sleep(Math.min(500 * 2 ** failures, 10_000), signal);
  }
  options.onConnection('closed');
}
