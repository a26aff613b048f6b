import {
  Batcher,
  LifecycleEvent,
  type LifecycleEventType,
  PatchbayError,
  Task,
  type TaskEvent,
  type TaskEventBody,
  TaskStatus,
  isTerminal,
  lifecycleEventOf,
} from '@patchbay/core';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { EVENT_FIELD, eventBodyJson, eventEntryJson, luaAppendEvent } from './event-entry.js';
import { StoreKeys } from './keys.js';
import { LuaScript } from './lua.js';
import { safeJson } from './safe-json.js';
import { ParsedRecords } from './parsed-records.js';
import { encodeRecord } from './record-codec.js';
import type { TaskListQuery, TaskPage, TaskStore } from './types.js';

export interface RedisTaskStoreOptions {
  /** A shared, non-blocking client (the store never blocks on it). */
  redis: Redis;
  /**
   * Every key lives under `${prefix}:`. A `firstEvent` of `create` goes to the log that a
   * `RedisEventLog` with the same prefix reads.
   */
  prefix: string;
  /**
   * How many times `update` retries after a concurrent write before giving up with `conflict`.
   * Each round lets at least one writer through, so this bounds the contention it survives.
   * @default 100
   */
  maxUpdateRetries?: number;
}

/** Largest page `list` serves. */
const MAX_PAGE_SIZE = 200;
const DEFAULT_PAGE_SIZE = 20;

const Secrets = z.record(z.string(), z.string());

/** A cursor names the last task of the previous page: its score and its id (ties broken by id). */
const Cursor = z.tuple([z.number(), z.string()]);

// Check, cap and write in one script so that two concurrent creates cannot both pass the cap, and
// so that the record and its first event exist together or not at all. Creates that arrive
// together go in one call (see `create`): the script takes them one after another, each with its
// 7 keys and 10 arguments after the ones they share, and answers one outcome per create, in order.
const CREATE = new LuaScript(
  `
-- KEYS: status counts, lifecycle outbox; then per create: record, secrets, tenant set, status
--       set, event log head, tenant's active attempts, idempotency key ('' when none)
-- ARGV: outbox cap, idempotency lifetime in seconds; then per create: record json, secrets json
--       ('' = none), score, id, maxActive (-1 = no cap), status, first event entry json
--       ('' = none), lifecycle event json, attempts, idempotency value ('<id> <body hash>')
-- A create reads its keys and arguments from offsets k and a.
local function create(k, a)
  local idempotency = KEYS[k + 7]
  if idempotency ~= '' then
    local earlier = redis.call('GET', idempotency)
    if earlier then return 'replay ' .. earlier end
  end
  local cap = tonumber(ARGV[a + 5])
  local weight = tonumber(ARGV[a + 9])
  if cap >= 0 and tonumber(redis.call('GET', KEYS[k + 6]) or '0') + weight > cap then
    return 'rate_limited'
  end
  if not redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'NX') then return 'conflict' end
  redis.call('INCRBY', KEYS[k + 6], weight)
  if idempotency ~= '' then redis.call('SET', idempotency, ARGV[a + 10], 'EX', ARGV[2]) end
  if ARGV[a + 2] ~= '' then redis.call('SET', KEYS[k + 2], ARGV[a + 2]) end
  redis.call('ZADD', KEYS[k + 3], ARGV[a + 3], ARGV[a + 4])
  redis.call('ZADD', KEYS[k + 4], ARGV[a + 3], ARGV[a + 4])
  redis.call('HINCRBY', KEYS[1], ARGV[a + 6], 1)
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[a + 8])
  -- The first event waits in the head, not in a new stream, until the log's first append.
  if ARGV[a + 7] ~= '' then redis.call('SET', KEYS[k + 5], ARGV[a + 7]) end
  return 'ok'
end
local outcomes = {}
for i = 0, (#KEYS - 2) / 7 - 1 do
  -- A create that fails fails alone; the others of the call go on.
  local ok, outcome = pcall(create, 2 + 7 * i, 2 + 10 * i)
  if not ok and type(outcome) == 'table' then outcome = outcome.err end
  outcomes[i + 1] = ok and outcome or ('error ' .. tostring(outcome))
end
return outcomes
`,
  7,
  { repeated: true, sharedKeys: 2 },
);

/** How long an `Idempotency-Key` names the task it made. */
const IDEMPOTENCY_SECONDS = 24 * 3600;

/**
 * Entries the lifecycle outbox keeps (`XADD MAXLEN ~`): its readers (webhooks, page updates) are
 * expected to keep up within this many status changes.
 */
const LIFECYCLE_MAX_ENTRIES = 100_000;

/**
 * Lua statements keeping the tenant's active-attempts counter (KEYS[7]) in step with a status
 * change from ARGV[5] to ARGV[6] of a task of ARGV[9] attempts: added when it becomes queued or
 * running, taken off when it ends (never below 0).
 */
const luaActiveChange = `
  local function active(status) return status == 'queued' or status == 'running' end
  if active(ARGV[5]) ~= active(ARGV[6]) then
    local delta = active(ARGV[6]) and tonumber(ARGV[9]) or -tonumber(ARGV[9])
    if tonumber(redis.call('INCRBY', KEYS[7], delta)) < 0 then redis.call('SET', KEYS[7], 0) end
  end`;

// Compare-and-set. Optimistic like WATCH/MULTI, but WATCH is per connection: on a client shared
// by concurrent callers one caller's EXEC clears another's watch and would let a lost update
// through. Comparing the exact JSON read inside the script is safe on a shared connection.
const COMPARE_AND_SET = new LuaScript(
  `
-- KEYS: record, old status set, new status set, tenant set, status counts, lifecycle outbox,
--       tenant's active attempts, event stream, event seq counter, event log head
-- ARGV: expected json, new json, id, score, old status, new status, lifecycle event json,
--       outbox cap (a status change writes its lifecycle event, in the same script), attempts,
--       ISO time, '1' to write the lifecycle event without a status change (a delivery),
--       event bodies appended to the task's log with the change...
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
if KEYS[2] ~= KEYS[3] then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HINCRBY', KEYS[5], ARGV[5], -1)
  redis.call('HINCRBY', KEYS[5], ARGV[6], 1)
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7])${luaActiveChange}
elseif ARGV[11] == '1' then
  redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7])
end
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
local seq = 0
for i = 12, #ARGV do${luaAppendEvent({ stream: 'KEYS[8]', seqKey: 'KEYS[9]', head: 'KEYS[10]', time: 'ARGV[10]', body: 'ARGV[i]' })}
end
return 1
`,
  10,
);

// A follow-up: an ended task goes back to `queued` (compare-and-set against the record read),
// under the tenant's cap, with its new turn's events appended and its lifecycle event written, in
// one step. The event stream must be live again for the new events to carry on its seqs: a stream
// that expired into the archive is put back from the entries passed in (or, when none were
// passed, the script says so and the caller reads the archive and calls again).
const REOPEN = new LuaScript(
  `
-- KEYS: record, old status set, new status set, tenant set, status counts, lifecycle outbox,
--       tenant's active attempts, event stream, event seq counter, event log head
-- ARGV: expected json, new json, id, score, old status, new status, lifecycle event json,
--       outbox cap, attempts, maxActive (-1 = no cap), ISO time, restore count (-1 = none
--       passed), restore entries (seq, json) * count, event bodies...
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 'changed' end
local cap = tonumber(ARGV[10])
if cap >= 0 and tonumber(redis.call('GET', KEYS[7]) or '0') + tonumber(ARGV[9]) > cap then
  return 'rate_limited'
end
local restore = tonumber(ARGV[12])
if redis.call('EXISTS', KEYS[8]) == 1 then
  redis.call('PERSIST', KEYS[8])
  redis.call('PERSIST', KEYS[9])
elseif restore < 0 then
  return 'restore'
else
  local last = 0
  for i = 0, restore - 1 do
    local seq = tonumber(ARGV[13 + 2 * i])
    redis.call('XADD', KEYS[8], '0-' .. seq, '${EVENT_FIELD}', ARGV[14 + 2 * i])
    if seq > last then last = seq end
  end
  redis.call('SET', KEYS[9], last)
end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[3])
redis.call('HINCRBY', KEYS[5], ARGV[5], -1)
redis.call('HINCRBY', KEYS[5], ARGV[6], 1)
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[3])
redis.call('XADD', KEYS[6], 'MAXLEN', '~', ARGV[8], '*', 'e', ARGV[7])${luaActiveChange}
local seq = 0
for i = 13 + 2 * math.max(restore, 0), #ARGV do${luaAppendEvent({ stream: 'KEYS[8]', seqKey: 'KEYS[9]', head: 'KEYS[10]', time: 'ARGV[11]', body: 'ARGV[i]' })}
end
return 'ok'
`,
  10,
);

/**
 * Task records in Redis (see {@link StoreKeys} for the layout). Records are stored as JSON without
 * their empty fields (record-codec.ts) and parsed with the `Task` schema when read back;
 * per-tenant sorted sets (all tasks, and one per status) serve newest-first listing and the
 * active-task count, and change in the same script as the record.
 */
export class RedisTaskStore implements TaskStore {
  private readonly redis: Redis;
  private readonly keys: StoreKeys;
  private readonly maxUpdateRetries: number;

  constructor(options: RedisTaskStoreOptions) {
    this.redis = options.redis;
    this.keys = new StoreKeys(options.prefix);
    this.maxUpdateRetries = options.maxUpdateRetries ?? 100;
  }

  /** What this store has read, parsed. */
  private readonly records = new ParsedRecords();

  /** Concurrent creates, sent as one call of the create script. */
  private readonly creates = new Batcher<{ keys: string[]; args: (string | number)[] }, unknown>(
    async (creates) => {
      const keys = [this.keys.statusCounts(), this.keys.lifecycle()];
      const args: (string | number)[] = [LIFECYCLE_MAX_ENTRIES, IDEMPOTENCY_SECONDS];
      for (const c of creates) {
        keys.push(...c.keys);
        args.push(...c.args);
      }
      return (await CREATE.run(this.redis, keys, args)) as unknown[];
    },
    { maxItems: 64 },
  );

  async create(
    task: Task,
    options: {
      secrets?: Record<string, string>;
      maxActive?: number;
      firstEvent?: TaskEventBody;
      idempotency?: { key: string; bodyHash: string };
    } = {},
  ): Promise<{ replayOf: string; sameBody: boolean } | null> {
    // No zod parse here (see TaskStore.create): it copied the whole record, an eighth of a
    // submit's CPU in the API. The score must still be a number for the indexes.
    const record = task;
    checkCreatedAt(record);
    const secrets = options.secrets ?? {};
    const firstEntry =
      options.firstEvent === undefined
        ? ''
        : eventEntryJson(1, new Date().toISOString(), eventBodyJson(options.firstEvent));
    const k = this.keys;
    const outcome = await this.creates.add({
      keys: [
        k.task(record.id),
        k.secrets(record.id),
        k.tenantTasks(record.tenant),
        k.tenantStatus(record.tenant, record.status),
        k.eventHead(record.id),
        k.tenantActive(record.tenant),
        options.idempotency === undefined
          ? ''
          : k.idempotency(record.tenant, options.idempotency.key),
      ],
      args: [
        encodeRecord(record),
        Object.keys(secrets).length === 0 ? '' : JSON.stringify(secrets),
        score(record),
        record.id,
        options.maxActive ?? -1,
        record.status,
        firstEntry,
        JSON.stringify(lifecycleEventOf(record, new Date())),
        record.attempts,
        options.idempotency === undefined ? '' : `${record.id} ${options.idempotency.bodyHash}`,
      ],
    });
    if (typeof outcome === 'string' && outcome.startsWith('replay ')) {
      const [taskId = '', bodyHash = ''] = outcome.slice('replay '.length).split(' ');
      return { replayOf: taskId, sameBody: bodyHash === options.idempotency?.bodyHash };
    }
    switch (outcome) {
      case 'ok':
        return null;
      case 'conflict':
        throw new PatchbayError('conflict', `task ${record.id} already exists`);
      case 'rate_limited':
        throw new PatchbayError(
          'rate_limited',
          `tenant already has ${options.maxActive} queued or running attempts (sandboxes)`,
          { details: { maxActive: options.maxActive } },
        );
      default:
        throw new PatchbayError(
          'internal_error',
          typeof outcome === 'string' && outcome.startsWith('error ')
            ? `task ${record.id} could not be created: ${outcome.slice('error '.length)}`
            : `unexpected create outcome ${String(outcome)}`,
        );
    }
  }

  async get(id: string): Promise<Task | null> {
    return (await this.read(id))?.task ?? null;
  }

  async getForTenant(tenant: string, id: string): Promise<Task | null> {
    const task = await this.get(id);
    // Another tenant's task looks exactly like a missing one: existence is not revealed.
    return task !== null && task.tenant === tenant ? task : null;
  }

  async list(tenant: string, query: TaskListQuery = {}): Promise<TaskPage> {
    const limit = query.limit ?? DEFAULT_PAGE_SIZE;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_SIZE) {
      throw new PatchbayError('validation_error', `limit must be 1..${MAX_PAGE_SIZE}`, {
        details: { field: 'limit' },
      });
    }
    const index =
      query.status === undefined
        ? this.keys.tenantTasks(tenant)
        : this.keys.tenantStatus(tenant, query.status);
    // One extra tells whether another page follows.
    const want = limit + 1;
    const page: { id: string; score: number }[] = [];

    let below = '+inf';
    if (query.cursor !== undefined) {
      const [cursorScore, cursorId] = decodeCursor(query.cursor);
      // Ties on createdAt: Redis orders equal scores by member bytes, descending under REV,
      // so the rest of the cursor's millisecond is the members sorting below the cursor id.
      const same = await this.redis.zrange(
        index,
        String(cursorScore),
        String(cursorScore),
        'BYSCORE',
        'REV',
      );
      const cursorBytes = Buffer.from(cursorId);
      for (const id of same) {
        if (page.length >= want) break;
        if (Buffer.compare(Buffer.from(id), cursorBytes) < 0) page.push({ id, score: cursorScore });
      }
      below = `(${cursorScore}`;
    }
    if (page.length < want) {
      const flat = await this.redis.zrange(
        index,
        below,
        '-inf',
        'BYSCORE',
        'REV',
        'LIMIT',
        0,
        want - page.length,
        'WITHSCORES',
      );
      for (let i = 0; i + 1 < flat.length; i += 2) {
        page.push({ id: flat[i] as string, score: Number(flat[i + 1]) });
      }
    }

    const shown = page.slice(0, limit);
    const raws =
      shown.length === 0 ? [] : await this.redis.mget(shown.map((e) => this.keys.task(e.id)));
    const tasks: Task[] = [];
    raws.forEach((raw, i) => {
      // An index entry without a record is skipped rather than failing the whole page.
      if (raw !== null) tasks.push(this.records.parse(raw, shown[i]?.id ?? ''));
    });
    const last = shown[shown.length - 1];
    return {
      tasks,
      nextCursor:
        page.length > limit && last !== undefined ? encodeCursor(last.score, last.id) : null,
    };
  }

  update(
    id: string,
    change: (task: Task) => Task | null,
    options: { events?: (next: Task) => readonly TaskEventBody[] } = {},
  ): Promise<Task | null> {
    return this.compareAndSet(id, change, false, options.events);
  }

  async rewriteEnded(
    id: string,
    change: (task: Task) => Task,
    options: { lifecycle?: LifecycleEventType } = {},
  ): Promise<Task | null> {
    const written = await this.compareAndSet(id, change, true, undefined, options.lifecycle);
    // Nothing written: the record has not ended, or there is none (told apart only then).
    if (written === null && (await this.read(id)) === null)
      throw new PatchbayError('not_found', `no task ${id}`);
    return written;
  }

  /** The optimistic loop of `update` (on a record that has not ended) and `rewriteEnded`. */
  private async compareAndSet(
    id: string,
    change: (task: Task) => Task | null,
    ended: boolean,
    events?: (next: Task) => readonly TaskEventBody[],
    lifecycle?: LifecycleEventType,
  ): Promise<Task | null> {
    for (let attempt = 0; attempt <= this.maxUpdateRetries; attempt++) {
      const current = await this.read(id);
      if (current === null || isTerminal(current.task.status) !== ended) return null;
      const changed = change(current.task);
      if (changed === null) return null;
      const next = checkRecord(changed);
      if (next.id !== current.task.id || next.tenant !== current.task.tenant) {
        throw new PatchbayError('internal_error', 'update must not change a task id or tenant');
      }
      if (ended && !isTerminal(next.status)) {
        throw new PatchbayError('internal_error', 'an ended record must stay ended');
      }
      const cas = this.statusChange(current, next, lifecycle);
      const written = await COMPARE_AND_SET.run(
        this.redis,
        [...cas.keys, ...this.keys.eventLog(id)],
        [
          ...cas.args,
          new Date().toISOString(),
          lifecycle === undefined ? '0' : '1',
          ...(events?.(next) ?? []).map(eventBodyJson),
        ],
      );
      if (written === 1) return next;
      // Lost the race: back off a little, with jitter so the losers do not collide again.
      await sleep(Math.random() * Math.min(20, 1 + attempt));
    }
    throw new PatchbayError('conflict', `task ${id} is being updated too often; try again`);
  }

  async reopen(
    id: string,
    change: (task: Task) => Task,
    options: {
      maxActive?: number;
      events: (next: Task) => readonly TaskEventBody[];
      log: () => Promise<readonly TaskEvent[]>;
    },
  ): Promise<Task> {
    let restore: readonly TaskEvent[] | undefined;
    for (let attempt = 0; attempt <= this.maxUpdateRetries; attempt++) {
      const current = await this.read(id);
      if (current === null) throw new PatchbayError('not_found', `no task ${id}`);
      const next = checkRecord(change(current.task));
      if (
        next.id !== current.task.id ||
        next.tenant !== current.task.tenant ||
        !isTerminal(current.task.status) ||
        isTerminal(next.status)
      ) {
        throw new PatchbayError('internal_error', 'reopen must take an ended task back to work');
      }
      const k = this.keys;
      const cas = this.statusChange(current, next);
      const outcome = await REOPEN.run(
        this.redis,
        [...cas.keys, ...k.eventLog(id)],
        [
          ...cas.args,
          options.maxActive ?? -1,
          new Date().toISOString(),
          restore === undefined ? -1 : restore.length,
          ...(restore ?? []).flatMap((e) => [e.seq, JSON.stringify(e)]),
          ...options.events(next).map(eventBodyJson),
        ],
      );
      switch (outcome) {
        case 'ok':
          return next;
        case 'restore':
          restore = await options.log();
          continue;
        case 'rate_limited':
          throw new PatchbayError(
            'rate_limited',
            `tenant already has ${options.maxActive} queued or running attempts (sandboxes)`,
            { details: { maxActive: options.maxActive } },
          );
        case 'changed':
          await sleep(Math.random() * Math.min(20, 1 + attempt));
          continue;
        default:
          throw new PatchbayError('internal_error', `unexpected reopen outcome ${String(outcome)}`);
      }
    }
    throw new PatchbayError('conflict', `task ${id} is being updated too often; try again`);
  }

  async lifecycleEvents(
    options: { after?: string; limit?: number } = {},
  ): Promise<{ id: string; event: LifecycleEvent }[]> {
    const entries = await this.redis.xrange(
      this.keys.lifecycle(),
      options.after === undefined ? '-' : `(${options.after}`,
      '+',
      'COUNT',
      options.limit ?? 100,
    );
    return entries.map(([id, fields]) => ({
      id,
      event: LifecycleEvent.parse(JSON.parse(fields[1] ?? 'null')),
    }));
  }

  async countActive(tenant: string): Promise<number> {
    return Math.max(0, Number((await this.redis.get(this.keys.tenantActive(tenant))) ?? 0));
  }

  /**
   * How many tasks are in each status, across tenants, for metrics: one `HGETALL` of a hash the
   * create and update scripts keep in step with the records, rather than a scan of every tenant.
   * Counts start with this store version: tasks created before it are not in them.
   */
  async countByStatus(): Promise<Record<TaskStatus, number>> {
    const raw = await this.redis.hgetall(this.keys.statusCounts());
    return Object.fromEntries(
      TaskStatus.options.map((status) => [status, Math.max(0, Number(raw[status] ?? 0))]),
    ) as Record<TaskStatus, number>;
  }

  async secrets(id: string): Promise<Record<string, string>> {
    const raw = await this.redis.get(this.keys.secrets(id));
    if (raw === null) return {};
    const parsed = Secrets.safeParse(safeJson(raw));
    if (!parsed.success) {
      // Never echo the stored value: it is a secret.
      throw new PatchbayError('internal_error', `stored secrets of task ${id} do not parse`);
    }
    return parsed.data;
  }

  async deleteSecrets(id: string): Promise<void> {
    await this.redis.del(this.keys.secrets(id));
  }

  async putDeliveryToken(id: string, token: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(this.keys.deliveryToken(id), token, 'EX', ttlSeconds);
  }

  async deliveryToken(id: string): Promise<string | null> {
    return this.redis.get(this.keys.deliveryToken(id));
  }

  async deleteDeliveryToken(id: string): Promise<void> {
    await this.redis.del(this.keys.deliveryToken(id));
  }

  /**
   * The keys and arguments the compare-and-set scripts share: record, old and new status sets,
   * tenant set, status counts, lifecycle outbox; expected and new JSON, id, score, old and new
   * status, the lifecycle event and the outbox cap.
   */
  private statusChange(
    current: { raw: string; task: Task },
    next: Task,
    lifecycle?: LifecycleEventType,
  ): { keys: string[]; args: (string | number)[] } {
    const k = this.keys;
    return {
      keys: [
        k.task(next.id),
        k.tenantStatus(next.tenant, current.task.status),
        k.tenantStatus(next.tenant, next.status),
        k.tenantTasks(next.tenant),
        k.statusCounts(),
        k.lifecycle(),
        k.tenantActive(next.tenant),
      ],
      args: [
        current.raw,
        encodeRecord(next),
        next.id,
        score(next),
        current.task.status,
        next.status,
        JSON.stringify(lifecycleEventOf(next, new Date(), lifecycle)),
        LIFECYCLE_MAX_ENTRIES,
        next.attempts,
      ],
    };
  }

  private async read(id: string): Promise<{ raw: string; task: Task } | null> {
    const raw = await this.redis.get(this.keys.task(id));
    return raw === null ? null : { raw, task: this.records.parse(raw, id) };
  }
}

/** Validates a record before it is written, so nothing unparseable ever reaches Redis. */
function checkRecord(task: Task): Task {
  const parsed = Task.safeParse(task);
  if (!parsed.success) {
    throw new PatchbayError('internal_error', `invalid task record: ${parsed.error.message}`);
  }
  checkCreatedAt(parsed.data);
  return parsed.data;
}

function checkCreatedAt(task: Task): void {
  if (Number.isNaN(Date.parse(task.createdAt))) {
    throw new PatchbayError('internal_error', `task createdAt is not a date: ${task.createdAt}`);
  }
}

function score(task: Task): number {
  return Date.parse(task.createdAt);
}

function encodeCursor(score: number, id: string): string {
  return Buffer.from(JSON.stringify([score, id]), 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): [number, string] {
  const parsed = /^[A-Za-z0-9_-]{1,2048}$/.test(cursor)
    ? Cursor.safeParse(safeJson(Buffer.from(cursor, 'base64url').toString('utf8')))
    : undefined;
  if (parsed?.success !== true) {
    throw new PatchbayError('validation_error', 'invalid cursor', { details: { field: 'cursor' } });
  }
  return parsed.data;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
