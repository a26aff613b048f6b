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
] as const;

export const LifecycleEvent = z.object({
  type: z.enum(LIFECYCLE_EVENT_TYPES),
  taskId: z.string(),
  tenant: z.string(),
  status: TaskStatus,
  /** The turn the change belongs to (a task's end is its current turn's end). */
  turn: z.number().int().positive().default(1),
  /** The task's error code, for `task.failed` and `task.cancelled`. */
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

/** The event of a task entering its current status. */
export function lifecycleEventOf(task: Task, at: Date): LifecycleEvent {
  return {
    type: task.status === 'queued' && task.turn > 1 ? 'turn.queued' : TYPE_FOR[task.status],
    taskId: task.id,
    tenant: task.tenant,
    status: task.status,
    turn: task.turn,
    errorCode: task.error?.code ?? null,
    at: at.toISOString(),
  };
}
