import { randomUUID } from 'node:crypto';
import {
  PatchbayError,
  Schedule,
  type ScheduleRun,
  type ScheduleSpec,
  type ScheduleView,
  isPatchbayError,
  isTerminal,
} from '@patchbay/core';
import type { Redis } from 'ioredis';
import type { TaskService } from './service.js';

/** The schedule queue as the service needs it (BullMQ job schedulers in `@patchbay/queue`). */
export interface ScheduleQueuePort {
  upsert(id: string, cron: string, timezone: string): Promise<void>;
  remove(id: string): Promise<void>;
  next(id: string): Promise<number | null>;
}

export interface ScheduleServiceDeps {
  redis: Redis;
  prefix: string;
  queue: ScheduleQueuePort;
  tasks: TaskService;
  /** Most schedules a tenant may keep. @default 100 */
  maxPerTenant?: number;
  /** @default () => new Date() */
  now?: () => Date;
}

/** Runs a schedule keeps, newest first. */
const RUNS_KEPT = 100;
const SCHEDULE_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * Task specs run on a schedule, per tenant. Each firing submits the spec as the tenant, through
 * the same service as `POST /v1/tasks` (so the tenant's caps and policy apply), unless the
 * previous run's task is still queued or running: then the firing is recorded as skipped.
 */
export class ScheduleService {
  readonly #d: ScheduleServiceDeps;
  readonly #now: () => Date;

  constructor(deps: ScheduleServiceDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  async create(tenant: string, input: ScheduleSpec): Promise<ScheduleView> {
    if (input.spec.environment?.secrets !== undefined || input.spec.delivery?.token !== undefined)
      throw new PatchbayError(
        'policy_refused',
        'a schedule keeps its spec: it cannot carry secrets or a delivery token',
        { details: { field: 'spec' } },
      );
    if (!isTimeZone(input.timezone))
      throw new PatchbayError('validation_error', `unknown time zone ${input.timezone}`, {
        details: { field: 'timezone' },
      });
    const count = await this.#d.redis.zcard(this.#tenantKey(tenant));
    if (count >= (this.#d.maxPerTenant ?? 100))
      throw new PatchbayError('policy_refused', 'this tenant keeps as many schedules as it may', {
        details: { max: this.#d.maxPerTenant ?? 100 },
      });
    const schedule: Schedule = {
      id: randomUUID(),
      tenant,
      cron: input.cron,
      timezone: input.timezone,
      spec: input.spec,
      paused: false,
      createdAt: this.#now().toISOString(),
      lastRun: null,
    };
    await this.#write(schedule);
    await this.#d.redis.zadd(this.#tenantKey(tenant), Date.now(), schedule.id);
    try {
      await this.#d.queue.upsert(schedule.id, schedule.cron, schedule.timezone);
    } catch (err) {
      await this.#drop(schedule);
      throw new PatchbayError('validation_error', `cron: ${(err as Error).message}`, {
        details: { field: 'cron' },
      });
    }
    return this.#view(schedule);
  }

  async list(tenant: string): Promise<ScheduleView[]> {
    const ids = await this.#d.redis.zrevrange(this.#tenantKey(tenant), 0, -1);
    const found = await Promise.all(ids.map((id) => this.#read(id)));
    return Promise.all(found.flatMap((s) => (s === null ? [] : [this.#view(s)])));
  }

  async get(tenant: string, id: string): Promise<ScheduleView> {
    return this.#view(await this.#own(tenant, id));
  }

  async pause(tenant: string, id: string): Promise<ScheduleView> {
    const schedule = await this.#own(tenant, id);
    await this.#d.queue.remove(id);
    const paused = { ...schedule, paused: true };
    await this.#write(paused);
    return this.#view(paused);
  }

  async resume(tenant: string, id: string): Promise<ScheduleView> {
    const schedule = await this.#own(tenant, id);
    const resumed = { ...schedule, paused: false };
    await this.#write(resumed);
    await this.#d.queue.upsert(id, schedule.cron, schedule.timezone);
    return this.#view(resumed);
  }

  async delete(tenant: string, id: string): Promise<void> {
    await this.#drop(await this.#own(tenant, id));
  }

  /** The schedule's runs, newest first. */
  async runs(tenant: string, id: string): Promise<ScheduleRun[]> {
    await this.#own(tenant, id);
    const raw = await this.#d.redis.lrange(this.#runsKey(id), 0, RUNS_KEPT - 1);
    return raw.map((r) => JSON.parse(r) as ScheduleRun);
  }

  /** One firing: submits the spec, or records why it did not. */
  async fire(id: string, at: Date): Promise<void> {
    const schedule = await this.#read(id);
    if (schedule === null || schedule.paused) return;
    const previous = schedule.lastRun?.taskId ?? null;
    let run: ScheduleRun;
    const still =
      previous === null
        ? null
        : await this.#d.tasks.get(schedule.tenant, previous).then(
            (t) => (isTerminal(t.status) ? null : t.status),
            () => null,
          );
    if (still !== null) {
      run = { at: at.toISOString(), taskId: null, skipped: `the previous run is still ${still}` };
    } else {
      try {
        const { task } = await this.#d.tasks.submit(schedule.tenant, schedule.spec, {
          origin: { kind: 'schedule', scheduleId: id },
        });
        run = { at: at.toISOString(), taskId: task.id, skipped: null };
      } catch (err) {
        if (!isPatchbayError(err)) throw err;
        run = { at: at.toISOString(), taskId: null, skipped: `${err.code}: ${err.message}` };
      }
    }
    await this.#d.redis
      .multi()
      .lpush(this.#runsKey(id), JSON.stringify(run))
      .ltrim(this.#runsKey(id), 0, RUNS_KEPT - 1)
      .exec();
    // The last run that started a task is the one the next firing waits for.
    const current = await this.#read(id);
    if (current === null) return;
    await this.#write({ ...current, lastRun: run.taskId === null ? current.lastRun : run });
  }

  async #own(tenant: string, id: string): Promise<Schedule> {
    const schedule = SCHEDULE_ID.test(id) ? await this.#read(id) : null;
    if (schedule === null || schedule.tenant !== tenant)
      throw new PatchbayError('not_found', `no schedule ${JSON.stringify(id.slice(0, 64))}`);
    return schedule;
  }

  async #view(schedule: Schedule): Promise<ScheduleView> {
    const { tenant: _tenant, ...rest } = schedule;
    const next = schedule.paused ? null : await this.#d.queue.next(schedule.id);
    return { ...rest, nextRunAt: next === null ? null : new Date(next).toISOString() };
  }

  async #read(id: string): Promise<Schedule | null> {
    const json = await this.#d.redis.get(this.#key(id));
    return json === null ? null : Schedule.parse(JSON.parse(json));
  }

  async #write(schedule: Schedule): Promise<void> {
    await this.#d.redis.set(this.#key(schedule.id), JSON.stringify(schedule));
  }

  async #drop(schedule: Schedule): Promise<void> {
    await this.#d.queue.remove(schedule.id).catch(() => undefined);
    await this.#d.redis
      .multi()
      .del(this.#key(schedule.id), this.#runsKey(schedule.id))
      .zrem(this.#tenantKey(schedule.tenant), schedule.id)
      .exec();
  }

  #key(id: string): string {
    return `${this.#d.prefix}:schedule:${id}`;
  }

  #runsKey(id: string): string {
    return `${this.#d.prefix}:schedule:${id}:runs`;
  }

  #tenantKey(tenant: string): string {
    return `${this.#d.prefix}:schedules:${tenant}`;
  }
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
