import { PatchbayError, TaskEventBody } from '@patchbay/core';

/** Field of a stream entry holding the event JSON. */
export const EVENT_FIELD = 'e';

/**
 * Lua statements appending one event to a task's stream: the next seq from the counter, then the
 * entry `0-<seq>`, which lets XRANGE/XREAD resume from a seq directly. The event JSON is built by
 * splicing seq and time in front of the body's fields rather than through cjson, which would turn
 * `[]` into `{}` ({@link eventEntryJson} builds the same in TypeScript). A log whose first entry
 * its task's create left in the head key (`StoreKeys.eventHead`) has no counter yet (the head
 * stands for seq 1): its first append moves the head into the stream as seq 1 and goes on from 2.
 * Every argument is a Lua expression; the statements assign the (declared) local `seq`. Used by
 * the event log's append and by the task store's scripts, so all write one format.
 */
export function luaAppendEvent(e: {
  stream: string;
  seqKey: string;
  head: string;
  time: string;
  body: string;
  /** Approximate cap on entries (`XADD MAXLEN ~`); none when absent. */
  maxLength?: string;
}): string {
  const trim = e.maxLength === undefined ? '' : `'MAXLEN', '~', ${e.maxLength}, `;
  return `
  seq = redis.call('INCR', ${e.seqKey})
  if seq == 1 then
    local head = redis.call('GET', ${e.head})
    if head then
      redis.call('XADD', ${e.stream}, '0-1', '${EVENT_FIELD}', head)
      seq = redis.call('INCR', ${e.seqKey})
    end
  end
  redis.call('XADD', ${e.stream}, ${trim}'0-' .. seq, '${EVENT_FIELD}',
    '{"seq":' .. seq .. ',"time":"' .. ${e.time} .. '",' .. string.sub(${e.body}, 2))`;
}

/** The stored JSON of event `seq`: seq and time spliced in front of the body's fields. */
export function eventEntryJson(seq: number, time: string, bodyJson: string): string {
  return `{"seq":${seq},"time":"${time}",${bodyJson.slice(1)}`;
}

/** An event body as stored: validated, stray fields dropped (a `seq` or `time` would shadow the real ones). */
export function eventBodyJson(event: TaskEventBody): string {
  const parsed = TaskEventBody.safeParse(event);
  if (!parsed.success) {
    throw new PatchbayError('internal_error', `invalid event: ${parsed.error.message}`);
  }
  return JSON.stringify(parsed.data);
}
