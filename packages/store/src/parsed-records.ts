import { PatchbayError, Task } from '@patchbay/core';
import { decodeRecord } from './record-codec.js';
import { safeJson } from './safe-json.js';

/**
 * Task records as read, parsed once: a record read again unchanged (the same JSON) is the same
 * object, so a task polled by its client costs one string comparison instead of a JSON parse and
 * a schema check. Records are deep-frozen, as every reader already treats them as values (a change
 * is a new record written through the store); a reader that mutated one would throw at once. The
 * newest `max` tasks are kept; the oldest go first.
 */
export class ParsedRecords {
  readonly #entries = new Map<string, { raw: string; task: Task }>();

  constructor(private readonly max = 4096) {}

  parse(raw: string, id: string): Task {
    const hit = this.#entries.get(id);
    if (hit !== undefined && hit.raw === raw) return hit.task;
    const task = deepFreeze(parseRecord(raw, id));
    this.#entries.delete(id);
    this.#entries.set(id, { raw, task });
    if (this.#entries.size > this.max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
    return task;
  }
}

function parseRecord(raw: string, id: string): Task {
  const parsed = Task.safeParse(decodeRecord(safeJson(raw)));
  if (!parsed.success) {
    throw new PatchbayError('internal_error', `stored record of task ${id} does not parse`, {
      details: { issues: parsed.error.issues.slice(0, 5) },
    });
  }
  return parsed.data;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
