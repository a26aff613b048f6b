import { PatchbayError, TaskEventBody } from '@patchbay/core';

/** Field of a stream entry holding the event JSON. */
export const EVENT_FIELD = 'e';

/**
 * Lua statements appending one event to a task's stream: the next seq from the counter, then the
 * entry `0-<seq>`, which lets XRANGE/XREAD resume from a seq directly. The event JSON is built by
 * splicing seq and time in front of the body's fields rather than through cjson, which would turn
 * `[]` into `{}`. Every argument is a Lua expression; the statements assign the (declared) local
 * `seq`. Used by the event log's append and by the task store's create, so both write one format.
 */
export function luaAppendEvent(e: {
  stream: string;
  seqKey: string;
  time: string;
  body: string;
  /** Approximate cap on entries (`XADD MAXLEN ~`); none when absent. */
  maxLength?: string;
}): string {
  const trim = e.maxLength === undefined ? '' : `'MAXLEN', '~', ${e.maxLength}, `;
  return `
  seq = redis.call('INCR', ${e.seqKey})
  redis.call('XADD', ${e.stream}, ${trim}'0-' .. seq, '${EVENT_FIELD}',
    '{"seq":' .. seq .. ',"time":"' .. ${e.time} .. '",' .. string.sub(${e.body}, 2))`;
}

/** An event body as stored: validated, stray fields dropped (a `seq` or `time` would shadow the real ones). */
export function eventBodyJson(event: TaskEventBody): string {
  const parsed = TaskEventBody.safeParse(event);
  if (!parsed.success) {
    throw new PatchbayError('internal_error', `invalid event: ${parsed.error.message}`);
  }
  return JSON.stringify(parsed.data);
}
