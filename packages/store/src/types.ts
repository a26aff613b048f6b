import type { Readable } from 'node:stream';
import type {
  LifecycleEvent,
  LifecycleEventType,
  Task,
  TaskEvent,
  TaskEventBody,
  TaskStatus,
} from '@patchbay/core';

export interface TaskListQuery {
  status?: TaskStatus;
  /** Opaque cursor from a previous page's `nextCursor`. */
  cursor?: string;
  /** Page size. @default 20 */
  limit?: number;
}

export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
}

/** Task records in Redis, always scoped by tenant for reads that serve a caller. */
export interface TaskStore {
  /**
   * Stores a new task and, apart from the record, its secrets. Atomic with the per-tenant cap:
   * rejects with `PatchbayError('rate_limited')` when the tenant already has `maxActive` queued or
   * running tasks, and with `conflict` when the id exists.
   *
   * Resolves to null when the task was stored, or to the earlier task an idempotency key names.
   * The record is stored as given: it is the one the task service built, typed, from a validated
   * spec. Changes to stored records, which change functions compute, are checked against the
   * `Task` schema before they are written.
   *
   * `firstEvent` is appended to the task's event log (as seq 1, the log of a new task being empty)
   * in the same atomic step, so that no record exists without it and no event without the record.
   */
  create(
    task: Task,
    options?: {
      secrets?: Record<string, string>;
      maxActive?: number;
      firstEvent?: TaskEventBody;
      /**
       * The client's `Idempotency-Key` and a hash of its request body: when the tenant used the
       * key within a day, nothing is created and the earlier task is named instead (with whether
       * its body was the same); otherwise the key is recorded with the task, in the same step.
       */
      idempotency?: { key: string; bodyHash: string };
    },
  ): Promise<{ replayOf: string; sameBody: boolean } | null>;
  /** The record, whoever owns it (worker side). */
  get(id: string): Promise<Task | null>;
  /** The record when it belongs to `tenant`; null when absent or another tenant's. */
  getForTenant(tenant: string, id: string): Promise<Task | null>;
  /** The tenant's tasks, newest first. */
  list(tenant: string, query?: TaskListQuery): Promise<TaskPage>;
  /**
   * Applies `change` atomically (optimistic, retried on a concurrent write). `change` returns the
   * new record, or null to leave it unchanged. A terminal record is final: `change` is not called
   * and null is returned. Indexes (status, tenant) follow the new record.
   *
   * `events` (made from the record as written) are appended to the task's log in the same atomic
   * step: no change goes without them, and they keep their order with any other writer's.
   *
   * Resolves to the record as written, or null when nothing was written (no such task, terminal,
   * or `change` returned null). `change` runs once per attempt, so it must be pure: no side
   * effects, everything derived from the record it is given.
   */
  update(
    id: string,
    change: (task: Task) => Task | null,
    options?: { events?: (next: Task) => readonly TaskEventBody[] },
  ): Promise<Task | null>;
  /**
   * Like `update`, for a record that has ended and stays ended (a user choosing another attempt,
   * a delivery; `lifecycle` names the outbox event such a change writes, none by default):
   * rejects with `not_found` when there is no such task, and resolves to null when it has not
   * ended. `change` may throw to refuse.
   */
  rewriteEnded(
    id: string,
    change: (task: Task) => Task,
    options?: { lifecycle?: LifecycleEventType },
  ): Promise<Task | null>;
  /**
   * Takes an ended task back to work (a follow-up): `change` makes the new record from the ended
   * one (it may throw to refuse, e.g. `conflict`), and the record, the tenant's cap (`maxActive`
   * queued or running tasks, else `rate_limited`), the lifecycle event and `events` (appended to
   * the task's log, which carries on from its last seq) are written in one atomic step. A log
   * that already expired into the archive is put back into Redis first, from what `log` reads.
   * Rejects with `not_found` for a missing task.
   */
  reopen(
    id: string,
    change: (task: Task) => Task,
    options: {
      maxActive?: number;
      events: (next: Task) => readonly TaskEventBody[];
      log: () => Promise<readonly TaskEvent[]>;
    },
  ): Promise<Task>;
  /**
   * The lifecycle outbox, oldest first: one event per status change, written in the same script
   * as the change. `after` is an entry id from a previous read (exclusive).
   */
  lifecycleEvents(options?: {
    after?: string;
    limit?: number;
  }): Promise<{ id: string; event: LifecycleEvent }[]>;
  /** Sandboxes a tenant's queued and running tasks hold: one per attempt. */
  countActive(tenant: string): Promise<number>;
  /** The task's secrets ({} when none or already deleted). */
  secrets(id: string): Promise<Record<string, string>>;
  /** Deletes the task's secrets; done when the task ends. */
  deleteSecrets(id: string): Promise<void>;
  /**
   * Keeps the token a task gave for its delivery, apart from the record and the setup secrets
   * (which go when the task ends): it lives until the delivery is done, or `ttlSeconds`.
   */
  putDeliveryToken(id: string, token: string, ttlSeconds: number): Promise<void>;
  /** The task's delivery token; null when it gave none (or it is gone). */
  deliveryToken(id: string): Promise<string | null>;
  deleteDeliveryToken(id: string): Promise<void>;
}

/** The per-task append-only event log: a Redis Stream while live, archived when the task ends. */
export interface EventLog {
  /** Appends events atomically in order; returns the seq of the last one. */
  append(taskId: string, events: TaskEventBody | readonly TaskEventBody[]): Promise<number>;
  /** Events with seq > `after`, oldest first, at most `limit`; from the stream or the archive. */
  read(taskId: string, options?: { after?: number; limit?: number }): Promise<TaskEvent[]>;
  /**
   * Every event with seq > `after` as it is appended, ending after the terminal status event
   * (or when `signal` aborts). With `pastEnd`, it goes on past a turn's end, so the events of a
   * follow-up's turn arrive too, until `signal` aborts. Uses its own blocking connection per call.
   */
  follow(
    taskId: string,
    options?: { after?: number; signal?: AbortSignal; pastEnd?: boolean },
  ): AsyncIterable<TaskEvent>;
  /** Writes the whole log to the artifact store and lets the stream expire. */
  archive(taskId: string): Promise<void>;
}

/**
 * Large per-task artifacts: the patches, the archived events, the model transcripts. A `put` is
 * complete-or-absent: a reader finds the old artifact or the whole new one, never part of one.
 */
export interface ArtifactStore {
  put(taskId: string, name: string, body: Buffer | string | Readable): Promise<void>;
  /** The artifact as a stream with its size in bytes, or null when it does not exist. */
  get(taskId: string, name: string): Promise<{ body: Readable; size: number } | null>;
  /** Removes every artifact of a task. */
  remove(taskId: string): Promise<void>;
}
