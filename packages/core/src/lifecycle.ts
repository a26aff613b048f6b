import { z } from 'zod';
import { TaskStatus, type Task } from './task.js';

/**
 * What happened to a task, once per status change: the outbox that webhooks, metrics and page
 * updates hang off. The store writes one in the same Redis script as the change itself, so no
 * change goes without its event and no event without its change.
 */
const LIFECYCLE_EVENT_TYPES = [
  'task.queued',
  /** A follow-up put an ended task back in the queue, with a new turn. */
  'turn.queued',
  'task.started',
  'task.succeeded',
  'task.failed',
  'task.cancelled',
  /** The result was pushed to its branch (and the pull request opened). */
  'task.delivered',
  /** Pushing the result, or opening its pull request, failed; `errorCode` says why. */
  'task.delivery_failed',
] as const;

export const LifecycleEvent = z.object({
  type: z.enum(LIFECYCLE_EVENT_TYPES),
  taskId: z.string(),
  tenant: z.string(),
  status: TaskStatus,
  /** The turn the change belongs to (a task's end is its current turn's end). */
  turn: z.number().int().positive().default(1),
  /** The task's error code, for `task.failed` and `task.cancelled` (the delivery's for `task.delivery_failed`). */
  errorCode: z.string().nullable(),
  /** When the change was written (ISO 8601). */
  at: z.string(),
});
export type LifecycleEvent = z.infer<typeof LifecycleEvent>;

const TYPE_FOR: Record<TaskStatus, LifecycleEvent['type']> = {
  queued: 'task.queued',
  running: 'task.started',
  succeeded: 'task.succeeded',
  failed: 'task.failed',
  cancelled: 'task.cancelled',
};

export type LifecycleEventType = LifecycleEvent['type'];

/** The event of a task entering its current status, or of what `type` names (a delivery). */
export function lifecycleEventOf(task: Task, at: Date, type?: LifecycleEventType): LifecycleEvent {
  const delivery = type === 'task.delivered' || type === 'task.delivery_failed';
  return {
    type:
      type ?? (task.status === 'queued' && task.turn > 1 ? 'turn.queued' : TYPE_FOR[task.status]),
    taskId: task.id,
    tenant: task.tenant,
    status: task.status,
    turn: delivery ? (task.delivery?.turn ?? task.turn) : task.turn,
    errorCode: (delivery ? task.delivery?.error?.code : task.error?.code) ?? null,
    at: at.toISOString(),
  };
}
