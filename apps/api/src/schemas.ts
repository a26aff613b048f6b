import { ERROR_CODES, Task } from '@patchbay/core';
import { z } from 'zod';

/** A task as the API serves it: the stored record without internal bookkeeping. */
export const TaskView = Task.omit({ tenant: true, cancelRequested: true });
export type TaskView = z.infer<typeof TaskView>;

export function toView(task: Task): TaskView {
  const { tenant: _tenant, cancelRequested: _cancelRequested, ...view } = task;
  return view;
}

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

export const TaskIdParams = z.object({ id: z.string().max(128) });
