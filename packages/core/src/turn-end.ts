/**
 * The end of an event-loop turn: once the I/O the turn handles is done (`setImmediate`), the work
 * its callbacks deferred runs together: a batch of concurrent requests' calls, their socket
 * writes. Work deferred from within that end runs as soon as the deferring callback returns: a
 * `setImmediate` then would wait for the next turn's end, a whole turn of I/O later, and a
 * batch's write would leave one turn after the batch.
 */
let inTurnEnd = false;

/** Runs `callback` at the end of this turn (see above). */
export function deferToTurnEnd(callback: () => void): void {
  if (inTurnEnd) process.nextTick(callback);
  else setImmediate(runInTurnEnd, callback);
}

function runInTurnEnd(callback: () => void): void {
  inTurnEnd = true;
  try {
    callback();
  } finally {
    inTurnEnd = false;
  }
}
