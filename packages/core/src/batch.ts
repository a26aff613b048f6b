import { deferToTurnEnd } from './turn-end.js';

/**
 * Sends the calls made in one turn of the event loop as one. Concurrent requests are read from
 * their sockets in the same turn; `add` keeps each call's item, and once that turn's I/O is
 * handled ({@link deferToTurnEnd}) the items go to `send` together, at most `maxItems` at a time. Each
 * call settles with its own item's outcome (`send` answers one per item, in order), or with the
 * error of the send its item was in. On a hot path where a Redis command costs more than the
 * work it carries, this saves a command and a socket write per call.
 */
export class Batcher<Item, Outcome> {
  readonly #send: (items: Item[]) => Promise<readonly Outcome[]>;
  readonly #maxItems: number;
  #waiting: { item: Item; resolve: (outcome: Outcome) => void; reject: (err: unknown) => void }[] =
    [];

  constructor(send: (items: Item[]) => Promise<readonly Outcome[]>, options: { maxItems: number }) {
    this.#send = send;
    this.#maxItems = options.maxItems;
  }

  add(item: Item): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      if (this.#waiting.push({ item, resolve, reject }) === 1) deferToTurnEnd(() => this.#flush());
    });
  }

  #flush(): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (let i = 0; i < waiting.length; i += this.#maxItems) {
      const batch = waiting.slice(i, i + this.#maxItems);
      let sent: Promise<readonly Outcome[]>;
      try {
        sent = this.#send(batch.map((w) => w.item));
      } catch (err) {
        sent = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      sent.then(
        (outcomes) => {
          if (outcomes.length !== batch.length) {
            const err = new Error(`${batch.length} items sent, ${outcomes.length} outcomes`);
            for (const w of batch) w.reject(err);
          } else batch.forEach((w, j) => w.resolve(outcomes[j]!));
        },
        (err: unknown) => {
          for (const w of batch) w.reject(err);
        },
      );
    }
  }
}
