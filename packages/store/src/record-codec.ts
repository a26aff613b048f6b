import { DEFAULT_CACHE_KEY, EMPTY_USAGE, type Task } from '@patchbay/core';

/**
 * How a task record is kept in Redis: its JSON without the fields that still hold their empty
 * value (nulls, zero usage, no models, the default cache key, ...), and without turn 1's prompt,
 * which is the task's. A new task's record goes from about 2 KB to a third of that, and every
 * byte of it was paid for several times over on a submit: stringified and written by the API,
 * read and copied by Redis, appended to its AOF, read again on each poll (bench/RESULTS.md).
 *
 * Reading puts the left-out fields back before the record is parsed with its schema, so readers
 * see the same record; a record stored whole (as before this form) reads as it did. The form is
 * one-way compatible: a reader older than it finds required fields missing.
 */

/** A field's empty value: left out of the stored JSON while the field holds it. */
type Empty =
  null | boolean | number | string | readonly string[] | Readonly<Record<string, number>>;

const TASK: Readonly<Record<string, Empty>> = {
  phase: null,
  startedAt: null,
  finishedAt: null,
  baseCommit: null,
  result: null,
  usage: EMPTY_USAGE,
  error: null,
  tries: 0,
  models: [],
  cancelRequested: false,
  delivery: null,
  notify: null,
  timings: null,
};

const ENVIRONMENT: Readonly<Record<string, Empty>> = {
  setup: null,
  verify: null,
  env: {},
  secretNames: [],
  network: 'none',
  allowDomains: [],
  cacheKey: DEFAULT_CACHE_KEY,
  setupAlways: false,
  maintenance: null,
};

const TURN: Readonly<Record<string, Empty>> = {
  startedAt: null,
  finishedAt: null,
  warm: null,
  usage: EMPTY_USAGE,
  error: null,
  result: null,
  chosen: null,
  timings: null,
};

const ATTEMPT: Readonly<Record<string, Empty>> = {
  startedAt: null,
  finishedAt: null,
  tries: 0,
  worker: null,
  usage: EMPTY_USAGE,
  error: null,
  result: null,
  changes: null,
  timings: null,
};

/** The JSON a record is stored as. */
export function encodeRecord(task: Task): string {
  const stored = withoutEmpty(task, TASK);
  stored['environment'] = withoutEmpty(task.environment, ENVIRONMENT);
  stored['turns'] = task.turns.map((turn) => {
    const t = withoutEmpty(turn, TURN);
    if (turn.n === 1 && turn.prompt === task.prompt) delete t['prompt'];
    t['attempts'] = turn.attempts.map((attempt) => withoutEmpty(attempt, ATTEMPT));
    return t;
  });
  return JSON.stringify(stored);
}

/**
 * A stored record's JSON as the record it was (to be checked against the schema still): the
 * left-out fields put back. Anything that is not a record's shape is returned as parsed, for the
 * schema to refuse.
 */
export function decodeRecord(parsed: unknown): unknown {
  if (!isObject(parsed)) return parsed;
  fill(parsed, TASK);
  if (isObject(parsed['environment'])) fill(parsed['environment'], ENVIRONMENT);
  if (Array.isArray(parsed['turns'])) {
    for (const turn of parsed['turns'] as unknown[]) {
      if (!isObject(turn)) continue;
      if (turn['n'] === 1 && !('prompt' in turn)) turn['prompt'] = parsed['prompt'];
      fill(turn, TURN);
      if (Array.isArray(turn['attempts']))
        for (const attempt of turn['attempts'] as unknown[])
          if (isObject(attempt)) fill(attempt, ATTEMPT);
    }
  }
  return parsed;
}

function withoutEmpty(
  value: object,
  empty: Readonly<Record<string, Empty>>,
): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const [field, v] of Object.entries(value))
    if (!(field in empty) || !isEmpty(v, empty[field] as Empty)) kept[field] = v;
  return kept;
}

function fill(value: Record<string, unknown>, empty: Readonly<Record<string, Empty>>): void {
  for (const field in empty) if (!(field in value)) value[field] = copy(empty[field] as Empty);
}

/** Whether `v` is the empty value `e`: equal, or an array or flat object of the same members. */
function isEmpty(v: unknown, e: Empty): boolean {
  if (e === null || typeof e !== 'object') return v === e;
  if (typeof v !== 'object' || v === null || Array.isArray(v) !== Array.isArray(e)) return false;
  const a = v as Record<string, unknown>;
  const b = e as Readonly<Record<string, unknown>>;
  const keys = Object.keys(b);
  if (Object.keys(a).length !== keys.length) return false;
  return keys.every((k) => a[k] === b[k]);
}

function copy(e: Empty): unknown {
  if (e === null || typeof e !== 'object') return e;
  return Array.isArray(e) ? [...(e as readonly string[])] : { ...e };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
