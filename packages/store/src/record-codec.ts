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

const TASK = fields({
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
});

const ENVIRONMENT = fields({
  setup: null,
  verify: null,
  env: {},
  secretNames: [],
  network: 'none',
  allowDomains: [],
  cacheKey: DEFAULT_CACHE_KEY,
  setupAlways: false,
  maintenance: null,
});

const TURN = fields({
  startedAt: null,
  finishedAt: null,
  warm: null,
  usage: EMPTY_USAGE,
  error: null,
  result: null,
  chosen: null,
  timings: null,
});

const ATTEMPT = fields({
  startedAt: null,
  finishedAt: null,
  tries: 0,
  worker: null,
  usage: EMPTY_USAGE,
  error: null,
  result: null,
  changes: null,
  timings: null,
});

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

function withoutEmpty(value: object, empty: Fields): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  for (const field in value) {
    const v = (value as Record<string, unknown>)[field];
    if (empty.get(field)?.is(v) !== true) kept[field] = v;
  }
  return kept;
}

function fill(value: Record<string, unknown>, empty: Fields): void {
  for (const [field, e] of empty) if (!(field in value)) value[field] = e.make();
}

/** A field's empty value as a test for it and a maker of fresh copies. */
interface EmptyField {
  is(value: unknown): boolean;
  make(): unknown;
}
type Fields = ReadonlyMap<string, EmptyField>;

function fields(empties: Readonly<Record<string, Empty>>): Fields {
  return new Map(Object.entries(empties).map(([field, e]) => [field, emptyField(e)]));
}

/** Equal to `e`; for an array or a flat object, the same members. */
function emptyField(e: Empty): EmptyField {
  if (e === null || typeof e !== 'object') return { is: (v) => v === e, make: () => e };
  if (isStrings(e)) {
    const items = [...e];
    return {
      is: (v) =>
        Array.isArray(v) && v.length === items.length && items.every((item, i) => v[i] === item),
      make: () => [...items],
    };
  }
  const entries = Object.entries(e);
  return {
    is: (v) =>
      isObject(v) && entries.every(([k, x]) => v[k] === x) && countKeys(v) === entries.length,
    make: () => ({ ...e }),
  };
}

function isStrings(e: Empty): e is readonly string[] {
  return Array.isArray(e);
}

function countKeys(value: object): number {
  let n = 0;
  for (const _ in value) n++;
  return n;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
