import { isTerminal } from '@patchbay/core';
import type { OutboxEntry, TaskStore } from '@patchbay/store';

/** A job of the `deliveries` queue: the task whose pending delivery to run. */
export interface DeliveryJob {
  taskId: string;
}

/** Delay before a delivery's next try. */
export const deliveryBackoff = (attemptsMade: number): number =>
  5000 * 2 ** Math.max(0, attemptsMade - 1);

/** Where delivery jobs go. */
export interface DeliveryQueuePort {
  add(id: string, job: DeliveryJob): Promise<void>;
}

/**
 * Hangs delivery off the lifecycle outbox: when a turn of a task that asked for delivery in its
 * spec succeeds, its delivery becomes pending for that turn and a job is queued. Idempotent: the
 * same event read twice queues the same job id, which the queue takes once.
 */
export class DeliveryTrigger {
  readonly #store: TaskStore;
  readonly #queue: DeliveryQueuePort;

  constructor(deps: { store: TaskStore; queue: DeliveryQueuePort }) {
    this.#store = deps.store;
    this.#queue = deps.queue;
  }

  async handle({ event }: OutboxEntry): Promise<void> {
    if (event.type !== 'task.succeeded') return;
    // Most tasks ask for no delivery: those cost a read, never a write.
    if ((await this.#store.get(event.taskId))?.delivery?.auto !== true) return;
    const written = await this.#store
      .rewriteEnded(event.taskId, (t) => {
        const d = t.delivery;
        if (d === null || !d.auto || t.turn !== event.turn || !isTerminal(t.status)) return t;
        if (d.status === 'pending' && d.turn === event.turn) return t;
        if (d.turn === event.turn && d.status !== 'requested') return t;
        return { ...t, delivery: { ...d, status: 'pending', turn: event.turn, error: null } };
      })
      .catch(() => null);
    const d = written?.delivery;
    if (d?.status === 'pending' && d.turn === event.turn)
      await this.#queue.add(`${event.taskId}_t${event.turn}`, { taskId: event.taskId });
  }
}
