import { PatchbayError, TaskEvent, type TaskEventBody, isTerminal } from '@patchbay/core';
import { setTimeout } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { EVENT_FIELD, eventBodyJson, luaAppendEvent } from './event-entry.js';
import { StoreKeys } from './keys.js';
import { LuaScript } from './lua.js';
import { readArtifact } from './read-artifact.js';
import type { ArtifactStore, EventLog } from './types.js';

/** Name of the archived log in the artifact store: one event JSON per line, in seq order. */
export const EVENTS_ARTIFACT = 'events.jsonl';

export interface RedisEventLogOptions {
  /** A shared, non-blocking client for appends and reads. */
  redis: Redis;
  /**
   * Makes the dedicated connection one `follow` blocks on (`XREAD BLOCK`); it is disconnected when
   * the follow ends. Blocking commands on a shared client would stall everyone else's commands.
   */
  createBlockingConnection: () => Redis;
  /** Every key lives under `${prefix}:`. */
  prefix: string;
  /** Where `archive` writes `events.jsonl` and where reads go once the stream has expired. */
  artifacts: ArtifactStore;
  /**
   * How long the stream stays in Redis after `archive`, so that followers already connected, or
   * arriving just after the task ended, still read it there.
   * @default 3600
   */
  archiveTtlSeconds?: number;
  /**
   * Approximate cap on stream entries (`XADD MAXLEN ~`). A safety net against a runaway task
   * filling Redis; per-task output caps keep real logs far below it.
   * @default 100000
   */
  maxStreamLength?: number;
  /**
   * How long one `XREAD BLOCK` of `follow` waits before it looks again whether the stream has
   * expired into the archive.
   * @default 5000
   */
  blockMs?: number;
}

/** Entries fetched per XRANGE/XREAD round. */
const BATCH = 500;

// One script per append: the seq counter and the entries move together, so concurrent appenders
// get strictly increasing seqs and entries in seq order.
const APPEND = new LuaScript(
  `
-- KEYS: stream, seq counter, head
-- ARGV: max length, ISO time, body json...
local seq = 0
for i = 3, #ARGV do${luaAppendEvent({ stream: 'KEYS[1]', seqKey: 'KEYS[2]', head: 'KEYS[3]', time: 'ARGV[2]', body: 'ARGV[i]', maxLength: 'ARGV[1]' })}
end
return seq
`,
  3,
);

type StreamEntry = [id: string, fields: string[]];

/**
 * The per-task event log: a Redis Stream while the task runs, `events.jsonl` in the artifact store
 * once it has ended (see {@link StoreKeys} for the keys).
 */
export class RedisEventLog implements EventLog {
  private readonly redis: Redis;
  private readonly createBlockingConnection: () => Redis;
  private readonly keys: StoreKeys;
  private readonly artifacts: ArtifactStore;
  private readonly archiveTtlSeconds: number;
  private readonly maxStreamLength: number;
  private readonly blockMs: number;

  constructor(options: RedisEventLogOptions) {
    this.redis = options.redis;
    this.createBlockingConnection = options.createBlockingConnection;
    this.keys = new StoreKeys(options.prefix);
    this.artifacts = options.artifacts;
    this.archiveTtlSeconds = options.archiveTtlSeconds ?? 3600;
    this.maxStreamLength = options.maxStreamLength ?? 100_000;
    this.blockMs = options.blockMs ?? 5000;
  }

  async append(taskId: string, events: TaskEventBody | readonly TaskEventBody[]): Promise<number> {
    const list: readonly TaskEventBody[] = Array.isArray(events)
      ? events
      : [events as TaskEventBody];
    if (list.length === 0) {
      // No counter yet: a head (the create's first event, not yet in the stream) is seq 1.
      const [seq, head] = await this.redis.mget(
        this.keys.eventSeq(taskId),
        this.keys.eventHead(taskId),
      );
      return seq != null ? Number(seq) : head != null ? 1 : 0;
    }
    const bodies = list.map(eventBodyJson);
    const seq = await APPEND.run(this.redis, this.keys.eventLog(taskId), [
      this.maxStreamLength,
      new Date().toISOString(),
      ...bodies,
    ]);
    return Number(seq);
  }

  async read(
    taskId: string,
    options: { after?: number; limit?: number } = {},
  ): Promise<TaskEvent[]> {
    const after = checkAfter(options.after);
    const limit = options.limit;
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
      throw new PatchbayError('validation_error', 'limit must be a positive integer', {
        details: { field: 'limit' },
      });
    }
    const key = this.keys.events(taskId);
    const entries = (
      limit === undefined
        ? await this.redis.xrange(key, `(0-${after}`, '+')
        : await this.redis.xrange(key, `(0-${after}`, '+', 'COUNT', limit)
    ) as StreamEntry[];
    if (entries.length > 0) return entries.map((entry) => parseEntry(taskId, entry));
    // Nothing after `after` in the stream, or no stream at all: only in the second case can the
    // head or the archive hold more.
    if ((await this.redis.exists(key)) === 1) return [];
    const head = await this.readHead(taskId);
    if (head !== null) return head.seq > after ? [head] : [];
    const archived = (await this.readArchive(taskId)) ?? [];
    const rest = archived.filter((e) => e.seq > after);
    return limit === undefined ? rest : rest.slice(0, limit);
  }

  async *follow(
    taskId: string,
    options: { after?: number; signal?: AbortSignal; pastEnd?: boolean } = {},
  ): AsyncGenerator<TaskEvent, void, undefined> {
    const { signal } = options;
    const pastEnd = options.pastEnd === true;
    let last = checkAfter(options.after);
    const key = this.keys.events(taskId);
    let blocking: Redis | undefined;
    // Closing the connection fails the pending XREAD at once instead of after `blockMs`.
    const onAbort = () => blocking?.disconnect();
    signal?.addEventListener('abort', onAbort, { once: true });
    const ends = (event: TaskEvent): boolean => !pastEnd && isFinal(event);
    /**
     * The stream is gone (the task ended long enough ago): the rest of the archive is delivered,
     * and then either the follow ends, or, past the end, it waits for a follow-up to bring the
     * stream back. False when the follow is over.
     */
    const fromArchive = async function* (
      this: RedisEventLog,
    ): AsyncGenerator<TaskEvent, boolean, undefined> {
      const archived = await this.readArchive(taskId);
      if (archived === null) return true;
      for (const event of archived) {
        if (event.seq <= last) continue;
        last = event.seq;
        yield event;
      }
      if (!pastEnd) return false;
      while (signal?.aborted !== true && (await this.redis.exists(key)) === 0)
        await setTimeout(this.blockMs, undefined, { signal }).catch(() => undefined);
      return signal?.aborted !== true;
    }.bind(this);
    try {
      if (signal?.aborted) return;
      if ((await this.redis.exists(key)) === 0) {
        // Not started: the log is its head alone until the first append makes the stream.
        const head = await this.readHead(taskId);
        if (head === null) {
          if (!(yield* fromArchive())) return;
        } else if (head.seq > last) {
          last = head.seq;
          yield head;
        }
      }
      // Catch up on the shared client first: a follow of a finished task (an SSE client
      // reconnecting, say) then needs no blocking connection of its own.
      for (;;) {
        const entries = (await this.redis.xrange(
          key,
          `(0-${last}`,
          '+',
          'COUNT',
          BATCH,
        )) as StreamEntry[];
        for (const entry of entries) {
          const event = parseEntry(taskId, entry);
          if (event.seq <= last) continue;
          last = event.seq;
          yield event;
          if (ends(event) || signal?.aborted) return;
        }
        if (entries.length < BATCH) break;
      }
      // Nothing may run between this check and issuing XREAD, so that an abort either stops
      // the loop here or finds the connection to close.
      while (signal?.aborted !== true) {
        blocking ??= this.createBlockingConnection();
        let reply: [string, StreamEntry[]][] | null;
        try {
          reply = await blocking.xread(
            'COUNT',
            BATCH,
            'BLOCK',
            this.blockMs,
            'STREAMS',
            key,
            `0-${last}`,
          );
        } catch (err) {
          if (signal?.aborted) return;
          throw err;
        }
        if (reply === null) {
          // Timed out. A live task just has nothing new, nor has one whose log is still its head
          // (not started); only when neither key exists may the log have expired into the archive.
          if (
            (await this.redis.exists(key, this.keys.eventHead(taskId))) === 0 &&
            !(yield* fromArchive())
          )
            return;
          continue;
        }
        for (const entry of reply[0]?.[1] ?? []) {
          const event = parseEntry(taskId, entry);
          // Seqs only grow, so anything at or below `last` was already delivered.
          if (event.seq <= last) continue;
          last = event.seq;
          yield event;
          if (ends(event) || signal?.aborted) return;
        }
      }
    } finally {
      signal?.removeEventListener('abort', onAbort);
      blocking?.disconnect();
    }
  }

  async archive(taskId: string): Promise<void> {
    const key = this.keys.events(taskId);
    const lines: string[] = [];
    let after = 0;
    for (;;) {
      const entries = (await this.redis.xrange(
        key,
        `(0-${after}`,
        '+',
        'COUNT',
        BATCH,
      )) as StreamEntry[];
      for (const entry of entries) {
        const event = parseEntry(taskId, entry);
        lines.push(JSON.stringify(event));
        after = event.seq;
      }
      if (entries.length < BATCH) break;
    }
    // No stream (already archived and expired, or never written): keep whatever archive exists.
    if (lines.length === 0) return;
    await this.artifacts.put(taskId, EVENTS_ARTIFACT, lines.join('\n') + '\n');
    // The archive is in place before the stream starts to expire, so a reader never finds neither.
    // The head went into the stream with the first append, so the stream holds the whole log.
    await this.redis
      .multi()
      .expire(key, this.archiveTtlSeconds)
      .expire(this.keys.eventSeq(taskId), this.archiveTtlSeconds)
      .del(this.keys.eventHead(taskId))
      .exec();
  }

  /** The log's first entry, as the task's create left it, until the stream exists; else null. */
  private async readHead(taskId: string): Promise<TaskEvent | null> {
    const raw = await this.redis.get(this.keys.eventHead(taskId));
    return raw === null ? null : parseEvent(taskId, raw);
  }

  /** The archived log, or null when there is none. */
  private async readArchive(taskId: string): Promise<TaskEvent[] | null> {
    const archived = await readArtifact(this.artifacts, taskId, EVENTS_ARTIFACT);
    if (archived === null) return null;
    return archived
      .toString('utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => parseEvent(taskId, line));
  }
}

/** The terminal status event is the last one a follower of a turn needs. */
function isFinal(event: TaskEvent): boolean {
  return event.type === 'status' && isTerminal(event.status);
}

function checkAfter(after: number | undefined): number {
  if (after === undefined) return 0;
  if (!Number.isSafeInteger(after) || after < 0) {
    throw new PatchbayError('validation_error', 'after must be a non-negative integer', {
      details: { field: 'after' },
    });
  }
  return after;
}

function parseEntry(taskId: string, [id, fields]: StreamEntry): TaskEvent {
  const at = fields.indexOf(EVENT_FIELD);
  const raw = at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
  if (raw === undefined) {
    throw new PatchbayError('internal_error', `event ${id} of task ${taskId} has no body`);
  }
  return parseEvent(taskId, raw);
}

function parseEvent(taskId: string, raw: string): TaskEvent {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  const parsed = TaskEvent.safeParse(json);
  if (!parsed.success) {
    throw new PatchbayError('internal_error', `stored event of task ${taskId} does not parse`, {
      details: { issues: parsed.error.issues.slice(0, 5) },
    });
  }
  return parsed.data;
}
