import { LifecycleEvent, type Logger, silentLogger } from '@patchbay/core';
import type { Redis } from 'ioredis';
import { StoreKeys } from './keys.js';
import { LuaScript } from './lua.js';
import { safeJson } from './safe-json.js';

/** One entry of the lifecycle outbox: its stream id (ordered across tasks) and its event. */
export interface OutboxEntry {
  id: string;
  event: LifecycleEvent;
}

export interface OutboxReaderOptions {
  /** A client for short commands (cursor, lease). */
  redis: Redis;
  /** A client of the reader's own: it blocks in `XREAD`. Closed with the reader. */
  blocking: Redis;
  prefix: string;
  /** The reader's name (`webhooks`, `deliveries`): its cursor and lease are its own. */
  name: string;
  /** This process, e.g. the worker id. */
  consumer: string;
  /**
   * Acts on one entry; entries come one at a time, in outbox order. A throw leaves the cursor
   * before the entry: it comes again (so handling must be idempotent).
   */
  handle: (entry: OutboxEntry) => Promise<void>;
  /** @default 2000 */
  blockMs?: number;
  /** How long the lease of the one process reading lasts unrenewed. @default 15000 */
  leaseMs?: number;
  log?: Logger;
}

// Take the lease when it is free or already ours; renew it either way.
const TAKE_LEASE = new LuaScript(
  `
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
`,
  1,
);

/**
 * Reads the lifecycle outbox for one purpose, in order, at least once: one process at a time
 * holds the reader's lease (so events of a task are handled in the order they were written, by
 * whichever worker is alive), and a cursor in Redis says where it is. A reader started for the
 * first time begins at the end of the outbox: it acts on what happens from then on.
 */
export class OutboxReader {
  readonly #o: OutboxReaderOptions;
  readonly #keys: StoreKeys;
  readonly #log: Logger;
  #stopped = false;
  #loop: Promise<void> | undefined;

  constructor(options: OutboxReaderOptions) {
    this.#o = options;
    this.#keys = new StoreKeys(options.prefix);
    this.#log = options.log ?? silentLogger;
  }

  /**
   * Sets the reader's cursor to the outbox's end unless it has one: the API calls this at start
   * too, so events written before any worker ran are not skipped.
   */
  static async ensureCursor(redis: Redis, prefix: string, name: string): Promise<void> {
    const keys = new StoreKeys(prefix);
    const last = await redis.xrevrange(keys.lifecycle(), '+', '-', 'COUNT', 1);
    await redis.set(keys.outboxCursor(name), last[0]?.[0] ?? '0-0', 'NX');
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  async close(): Promise<void> {
    this.#stopped = true;
    this.#o.blocking.disconnect();
    await this.#loop;
    await this.#o.redis
      .eval(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0",
        1,
        this.#keys.outboxLeader(this.#o.name),
        this.#o.consumer,
      )
      .catch(() => undefined);
  }

  async #run(): Promise<void> {
    const { redis, name } = this.#o;
    const leaseMs = this.#o.leaseMs ?? 15_000;
    const blockMs = this.#o.blockMs ?? 2000;
    await OutboxReader.ensureCursor(redis, this.#o.prefix, name).catch(() => undefined);
    while (!this.#stopped) {
      try {
        const leader =
          (await TAKE_LEASE.run(
            redis,
            [this.#keys.outboxLeader(name)],
            [this.#o.consumer, leaseMs],
          )) === 1;
        if (!leader) {
          await sleep(Math.min(leaseMs / 3, 2000));
          continue;
        }
        const cursor = (await redis.get(this.#keys.outboxCursor(name))) ?? '0-0';
        const read = await this.#o.blocking.xread(
          'COUNT',
          100,
          'BLOCK',
          Math.min(blockMs, leaseMs / 3),
          'STREAMS',
          this.#keys.lifecycle(),
          cursor,
        );
        for (const [id, fields] of read?.[0]?.[1] ?? []) {
          if (this.#stopped) return;
          const parsed = LifecycleEvent.safeParse(safeJson(fields[1]));
          if (parsed.success) await this.#o.handle({ id, event: parsed.data });
          else this.#log.warn({ id, reader: name }, 'an outbox entry does not parse; skipped');
          await redis.set(this.#keys.outboxCursor(name), id);
        }
      } catch (err) {
        if (this.#stopped) return;
        this.#log.warn({ err, reader: name }, 'reading the lifecycle outbox failed; retrying');
        await sleep(1000);
      }
    }
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
