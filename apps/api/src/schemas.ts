import { ERROR_CODES } from '@patchbay/core';
import { z } from 'zod';

export { TaskView, toView } from '@patchbay/core';

export const ErrorBody = z.object({
  error: z.object({
    code: z.enum(ERROR_CODES),
    message: z.string(),
    details: z.unknown().optional(),
  }),
});

export const TaskIdParams = z.object({ id: z.string().max(128) });
