import { ScheduleRun, ScheduleSpec, ScheduleView } from '@patchbay/core';
import type { ScheduleService } from '@patchbay/tasks';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_RESPONSES } from '../schemas.js';

export interface ScheduleRoutesDeps {
  schedules: ScheduleService;
}

const errors = ERROR_RESPONSES;
const ScheduleParams = z.object({ id: z.string().max(64) });

/** `/v1/schedules`: task specs run on a cron pattern, per tenant. */
export const scheduleRoutes: FastifyPluginAsyncZod<ScheduleRoutesDeps> = async (
  app,
  { schedules },
) => {
  app.post(
    '/v1/schedules',
    {
      schema: {
        summary: 'Run a task spec on a schedule',
        description:
          'Each time the cron pattern comes round (in `timezone`), the spec is submitted as a task, under the ' +
          "tenant's caps, unless the previous run's task is still queued or running: that firing is recorded as " +
          'skipped. A schedule keeps its spec, so it cannot carry secrets or a delivery token.',
        body: ScheduleSpec,
        response: { 201: ScheduleView, ...errors },
      },
    },
    async (request, reply) =>
      reply.code(201).send(await schedules.create(request.tenant, request.body)),
  );

  app.get(
    '/v1/schedules',
    {
      schema: {
        summary: "List the caller's schedules, newest first",
        response: { 200: z.object({ schedules: z.array(ScheduleView) }), ...errors },
      },
    },
    async (request) => ({ schedules: await schedules.list(request.tenant) }),
  );

  app.get(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Get a schedule',
        params: ScheduleParams,
        response: { 200: ScheduleView, ...errors },
      },
    },
    async (request) => schedules.get(request.tenant, request.params.id),
  );

  app.get(
    '/v1/schedules/:id/runs',
    {
      schema: {
        summary: "A schedule's runs, newest first (the last 100)",
        params: ScheduleParams,
        response: { 200: z.object({ runs: z.array(ScheduleRun) }), ...errors },
      },
    },
    async (request) => ({ runs: await schedules.runs(request.tenant, request.params.id) }),
  );

  app.post(
    '/v1/schedules/:id/pause',
    {
      schema: {
        summary: 'Pause a schedule (it fires no more until resumed)',
        params: ScheduleParams,
        response: { 200: ScheduleView, ...errors },
      },
    },
    async (request) => schedules.pause(request.tenant, request.params.id),
  );

  app.post(
    '/v1/schedules/:id/resume',
    {
      schema: {
        summary: 'Resume a paused schedule',
        params: ScheduleParams,
        response: { 200: ScheduleView, ...errors },
      },
    },
    async (request) => schedules.resume(request.tenant, request.params.id),
  );

  app.delete(
    '/v1/schedules/:id',
    {
      schema: {
        summary: 'Delete a schedule (its tasks stay)',
        params: ScheduleParams,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      await schedules.delete(request.tenant, request.params.id);
      return reply.code(204).send(null);
    },
  );
};
