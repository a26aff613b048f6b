import type { TaskEventBody } from '@patchbay/core';
import type { EventLog } from '@patchbay/store';

/**
 * Appends a task's events in order without a round trip per event: events emitted while an
 * append is in flight go out together in the next one.
 */
export class EventWriter {
  readonly #log: EventLog;
  readonly #taskId: string;
  #buffer: TaskEventBody[] = [];
  #inFlight: Promise<void> = Promise.resolve();
  #error: Error | undefined;

  constructor(log: EventLog, taskId: string) {
    this.#log = log;
    this.#taskId = taskId;
  }

  emit = (event: TaskEventBody): void => {
    this.#buffer.push(event);
    if (this.#buffer.length === 1)
      this.#inFlight = this.#inFlight.then(() => this.#appendBuffered());
  };

  /** Resolves once everything emitted so far is stored; rejects if an append failed. */
  async drain(): Promise<void> {
    await this.#inFlight;
    if (this.#error !== undefined) throw this.#error;
  }

  async #appendBuffered(): Promise<void> {
    const batch = this.#buffer;
    this.#buffer = [];
    if (batch.length === 0) return;
    try {
      await this.#log.append(this.#taskId, batch);
    } catch (err) {
      this.#error ??= err instanceof Error ? err : new Error(String(err));
    }
  }
}
