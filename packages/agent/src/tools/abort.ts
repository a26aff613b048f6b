import { AbortError } from '../model/index.js';

/**
 * The error a cancelled tool call ends the run with: the model client's {@link AbortError},
 * carrying the signal's reason as its cause, so one `isAbortError` check covers both.
 */
export function abortErrorFrom(signal: AbortSignal): AbortError {
  return new AbortError(signal.reason);
}
