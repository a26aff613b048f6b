import { DeliveryRequest, PatchbayError } from '@patchbay/core';
import type { TaskService } from '@patchbay/tasks';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_RESPONSES, ErrorBody, TaskIdParams, TaskView, toView } from '../schemas.js';

export interface DeliveryRoutesDeps {
  service: TaskService;
  /** How often a waiting request looks at the record again. @default 200 */
  pollMs?: number;
}

const errors = { ...ERROR_RESPONSES, 502: ErrorBody };

export const deliveryRoutes: FastifyPluginAsyncZod<DeliveryRoutesDeps> = async (
  app,
  { service, pollMs = 200 },
) => {
  app.post(
    '/v1/tasks/:id/deliver',
    {
      schema: {
        summary: "Push the task's result to a branch (and open a pull request)",
        description:
          'The worker commits base + patch in its own mirror and pushes it with the credential the ' +
          'operator configured for the host (or `token`, kept for this delivery only); a pull ' +
          'request goes through the forge API. Waits up to `wait` seconds (default 20) for the ' +
          'outcome: 200 with the record when delivered, the error when it failed (409 ' +
          '`branch_protected` for the default branch, 409 `branch_exists` for a branch this task did ' +
          'not make, 422 `delivery_auth_failed`), 202 while still under way. Delivering again to the ' +
          'same branch (after a follow-up) adds a commit on top and keeps its pull request.',
        params: TaskIdParams,
        querystring: z.strictObject({ wait: z.coerce.number().int().min(0).max(60).default(20) }),
        body: DeliveryRequest,
        response: { 200: TaskView, 202: TaskView, ...errors },
      },
    },
    async (request, reply) => {
      const { tenant } = request;
      const { id } = request.params;
      let task = await service.deliver(tenant, id, request.body);
      const deadline = Date.now() + request.query.wait * 1000;
      while (task.delivery?.status === 'pending' && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, pollMs));
        task = await service.get(tenant, id);
      }
      const error = task.delivery?.status === 'failed' ? task.delivery.error : null;
      if (error) {
        throw new PatchbayError(error.code, error.message, {
          details: { delivery: task.delivery },
        });
      }
      return reply.code(task.delivery?.status === 'delivered' ? 200 : 202).send(toView(task));
    },
  );
};
