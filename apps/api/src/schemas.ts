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

/** The error answers a `/v1` route may give, for its OpenAPI description. */
export const ERROR_RESPONSES = {
  400: ErrorBody,
  401: ErrorBody,
  404: ErrorBody,
  409: ErrorBody,
  422: ErrorBody,
  429: ErrorBody,
  503: ErrorBody,
} as const;

export const TaskIdParams = z.object({ id: z.string().max(128) });
