import type { TaskStatus } from '@patchbay/core';

/**
 * The Redis key layout of the store, in one place. Ids and tenant names are URI-encoded so that
 * no value can contain `:` and reach another key (a task id `x:secrets` must not read the
 * secrets of task `x`).
 */
export class StoreKeys {
  constructor(readonly prefix: string) {}

  /** String: the task record as JSON, in its stored form (record-codec.ts). */
  task(id: string): string {
    return `${this.prefix}:task:${enc(id)}`;
  }
  /** String: the token a task gave for its delivery, apart from the record. */
  deliveryToken(id: string): string {
    return `${this.prefix}:task:${enc(id)}:delivery-token`;
  }

  /** String: the task's secrets as JSON, apart from the record. */
  secrets(id: string): string {
    return `${this.prefix}:task:${enc(id)}:secrets`;
  }
  /** Sorted set: every task id of a tenant, scored by createdAt (ms). */
  tenantTasks(tenant: string): string {
    return `${this.prefix}:tenant:${enc(tenant)}:tasks`;
  }
  /** Sorted set: the tenant's task ids in one status, scored by createdAt (ms). */
  tenantStatus(tenant: string, status: TaskStatus): string {
    return `${this.prefix}:tenant:${enc(tenant)}:status:${status}`;
  }
  /**
   * String counter: the sandboxes a tenant's queued and running tasks hold, one per attempt (kept
   * by the create, update and reopen scripts; the per-tenant cap is checked against it).
   */
  tenantActive(tenant: string): string {
    return `${this.prefix}:tenant:${enc(tenant)}:active`;
  }
  /**
   * String: the task an `Idempotency-Key` of the tenant made, `<task id> <body hash>`; it expires
   * a day after the submit.
   */
  idempotency(tenant: string, key: string): string {
    return `${this.prefix}:tenant:${enc(tenant)}:idempotency:${enc(key)}`;
  }
  /** Hash: status → how many tasks are in it, across tenants (kept by the create/update scripts). */
  statusCounts(): string {
    return `${this.prefix}:status-counts`;
  }
  /** Stream: the lifecycle outbox, one entry (field `e`, a LifecycleEvent's JSON) per status change. */
  lifecycle(): string {
    return `${this.prefix}:lifecycle`;
  }
  /** String: the last outbox entry a reader (`webhooks`, `deliveries`) has handled. */
  outboxCursor(reader: string): string {
    return `${this.prefix}:lifecycle:${enc(reader)}:cursor`;
  }
  /** String: the process reading the outbox for `reader` now (a lease that expires). */
  outboxLeader(reader: string): string {
    return `${this.prefix}:lifecycle:${enc(reader)}:leader`;
  }
  /** String: a live worker's heartbeat (its last beat's time), expiring unless renewed. */
  worker(workerId: string): string {
    return `${this.prefix}:worker:${enc(workerId)}`;
  }
  /** String: the worker keeping a task attempt's sandbox for a follow-up (expires with it). */
  kept(taskId: string, attempt: number): string {
    return `${this.prefix}:kept:${enc(taskId)}:${attempt}`;
  }
  /** Stream: the task's live events, entry id `0-<seq>`, one field `e` holding the event JSON. */
  events(id: string): string {
    return `${this.prefix}:events:${enc(id)}`;
  }
  /** String counter: the last seq handed out for the task's events; absent until the first append. */
  eventSeq(id: string): string {
    return `${this.prefix}:events:${enc(id)}:seq`;
  }
  /**
   * String: the first entry of a task's log (its `queued` status, seq 1), written by the task's
   * create apart from the stream, and moved into the stream by the log's first append. A submit
   * then creates no stream: a stream's first entry allocates a whole listpack node (4 KB by
   * default), which made a submit cost Redis about twice what the rest of it did.
   */
  eventHead(id: string): string {
    return `${this.prefix}:events:${enc(id)}:head`;
  }
  /** The keys of a task's log, in the order the scripts take them: stream, seq counter, head. */
  eventLog(id: string): [stream: string, seq: string, head: string] {
    return [this.events(id), this.eventSeq(id), this.eventHead(id)];
  }
}

const enc = (s: string): string => encodeURIComponent(s);
