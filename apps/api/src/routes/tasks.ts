import {
  AgentRuntime,
  Attempt,
  FollowUp,
  CLIENT_ORIGINS,
  type TaskOrigin,
  TaskSpec,
  TaskStatus,
} from '@patchbay/core';
import type { Readable } from 'node:stream';
import type { TaskService } from '@patchbay/tasks';
import type { FastifyReply } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { afterRateLimit } from '../rate-limit.js';
import { ERROR_RESPONSES, TaskIdParams, TaskView, toView } from '../schemas.js';

export interface TaskRoutesDeps {
  service: TaskService;
}

const errors = ERROR_RESPONSES;

/** The origin a `Patchbay-Client` header names; the API for any other value or none. */
function originOf(client: string | undefined): TaskOrigin {
  const kind = CLIENT_ORIGINS.find((k) => k === client);
  return { kind: kind ?? 'api' };
}

/** What each runtime is, in the words a person picking one needs. */
const RUNTIME_SUMMARIES: Record<AgentRuntime, string> = {
  patchbay: "Patchbay's agent: it runs in the worker and every command it runs, in the sandbox.",
  codex: 'The Codex CLI inside the sandbox, reaching the model only through the task gateway.',
};

export const taskRoutes: FastifyPluginAsyncZod<TaskRoutesDeps> = async (app, { service }) => {
  app.post(
    '/v1/tasks',
    {
      schema: {
        summary: 'Submit a task',
        description:
          'With an `Idempotency-Key` header, a retry of the same request within 24 hours starts ' +
          'nothing new: it answers 200 with the task the first one made; the same key with another ' +
          'body is a 422 `idempotency_key_reused`.',
        body: TaskSpec,
        headers: z
          .object({
            'idempotency-key': z
              .string()
              .regex(/^[\x21-\x7e]{1,255}$/, 'must be 1-255 visible ASCII characters')
              .optional(),
            'patchbay-client': z
              .string()
              .optional()
              .describe(
                'Which client sends the task (`page`, `cli`, `mcp`); recorded as its origin.',
              ),
          })
          .passthrough(),
        response: { 200: TaskView, 202: TaskView, ...errors },
      },
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      const { task, replayed } = await service.submit(request.tenant, request.body, {
        ...(key === undefined ? {} : { idempotencyKey: key }),
        origin: originOf(request.headers['patchbay-client']),
      });
      return reply
        .code(replayed ? 200 : 202)
        .header('location', `/v1/tasks/${task.id}`)
        .send(toView(task));
    },
  );

  app.get(
    '/v1/runtimes',
    {
      schema: {
        summary: 'The agent runtimes this server offers',
        description:
          'What `agent.runtime` of a task may name; the one marked `default` runs a task that names none.',
        response: {
          200: z.object({
            runtimes: z.array(
              z.object({ name: AgentRuntime, summary: z.string(), default: z.boolean() }),
            ),
          }),
          ...errors,
        },
      },
    },
    async () => ({
      runtimes: service.runtimes().map((name, i) => ({
        name,
        summary: RUNTIME_SUMMARIES[name],
        default: i === 0,
      })),
    }),
  );

  app.get(
    '/v1/tasks',
    {
      schema: {
        summary: "List the caller's tasks, newest first",
        querystring: z.strictObject({
          status: TaskStatus.optional(),
          cursor: z.string().max(512).optional(),
          limit: z.coerce.number().int().min(1).max(100).default(20),
        }),
        response: {
          200: z.object({ tasks: z.array(TaskView), nextCursor: z.string().nullable() }),
          ...errors,
        },
      },
    },
    async (request) => {
      const { status, cursor, limit } = request.query;
      const page = await service.list(request.tenant, {
        limit,
        ...(status ? { status } : {}),
        ...(cursor ? { cursor } : {}),
      });
      return { tasks: page.tasks.map(toView), nextCursor: page.nextCursor };
    },
  );

  app.get(
    '/v1/tasks/:id',
    {
      schema: {
        summary: 'Get a task',
        params: TaskIdParams,
        response: { 200: TaskView, ...errors },
      },
      config: { rateLimitAlongside: true },
    },
    async (request) =>
      toView(await afterRateLimit(request, service.get(request.tenant, request.params.id))),
  );

  app.post(
    '/v1/tasks/:id/cancel',
    {
      schema: {
        summary: 'Cancel a queued or running task (idempotent)',
        params: TaskIdParams,
        response: { 202: TaskView, ...errors },
      },
    },
    async (request, reply) =>
      reply.code(202).send(toView(await service.cancel(request.tenant, request.params.id))),
  );

  app.post(
    '/v1/tasks/:id/messages',
    {
      schema: {
        summary: 'Send a follow-up: the next turn of an ended task',
        description:
          'The task goes back to `queued` with a new turn: the agent continues from the tree the ' +
          'last turn left (baseCommit + the patch so far), with the conversation so far as context, ' +
          'the same environment and setup. 409 `conflict` while the task is queued or running, ' +
          'when it was cancelled, or when no turn left a workspace result.',
        params: TaskIdParams,
        body: FollowUp,
        response: { 202: TaskView, ...errors },
      },
    },
    async (request, reply) => {
      const task = await service.followUp(request.tenant, request.params.id, request.body.prompt);
      return reply.code(202).header('location', `/v1/tasks/${task.id}`).send(toView(task));
    },
  );

  app.get(
    '/v1/tasks/:id/patch',
    {
      schema: {
        summary: 'Download the patch (git diff --binary against baseCommit)',
        params: TaskIdParams,
        description:
          "A `text/x-diff` body for `git apply` against the task's baseCommit: every turn's changes " +
          'together, as of the last turn that collected a patch; empty when the agent changed nothing. ' +
          '409 `patch_not_ready` until a turn has ended with one.',
        produces: ['text/x-diff'],
      },
    },
    async (request, reply) =>
      sendPatch(reply, request.params.id, await service.patch(request.tenant, request.params.id)),
  );

  const AttemptParams = TaskIdParams.extend({ n: z.coerce.number().int().min(1).max(100) });

  app.get(
    '/v1/tasks/:id/attempts',
    {
      schema: {
        summary: "The attempts of the task's current turn (or of `?turn=`)",
        description:
          "Each attempt's status, model, tries, usage, error, and result: the task's cumulative result " +
          "had it been chosen, and what it changed in its turn. `chosen` is the attempt the turn's result is.",
        params: TaskIdParams,
        querystring: z.strictObject({
          turn: z.coerce.number().int().min(1).max(100_000).optional(),
        }),
        response: {
          200: z.object({
            turn: z.number().int(),
            chosen: z.number().int().nullable(),
            attempts: z.array(Attempt),
          }),
          ...errors,
        },
      },
    },
    async (request) => service.attempts(request.tenant, request.params.id, request.query.turn),
  );

  app.get(
    '/v1/tasks/:id/attempts/:n/patch',
    {
      schema: {
        summary: 'Download the patch of one attempt of the current turn',
        description:
          "The attempt's cumulative patch against baseCommit (what the task's patch would be had it " +
          'been chosen). 409 `patch_not_ready` until the attempt has collected one.',
        params: AttemptParams,
        produces: ['text/x-diff'],
      },
    },
    async (request, reply) => {
      const { id, n } = request.params;
      return sendPatch(
        reply,
        `${id}.attempt-${n}`,
        await service.attemptPatch(request.tenant, id, n),
      );
    },
  );

  app.post(
    '/v1/tasks/:id/attempts/:n/choose',
    {
      schema: {
        summary: "Overrule the choice: make attempt n the result of the task's last turn",
        description:
          "The task's result, patch and status become the attempt's; the selection records that a " +
          'user overruled the rule (and what the rule chose). 409 while the turn runs, or for an ' +
          'attempt without a patch.',
        params: AttemptParams,
        response: { 200: TaskView, ...errors },
      },
    },
    async (request) =>
      toView(await service.choose(request.tenant, request.params.id, request.params.n)),
  );

  app.get(
    '/v1/tasks/:id/turns/:n/patch',
    {
      schema: {
        summary: 'Download what one turn alone changed',
        params: TaskIdParams.extend({ n: z.coerce.number().int().min(1).max(100_000) }),
        description:
          'A `text/x-diff` body that applies on top of the tree the turn started from (for turn 1, ' +
          "the baseCommit; after that, the previous turn's cumulative patch applied to it). 404 for " +
          'a turn the task does not have; 409 `patch_not_ready` until the turn has ended with one.',
        produces: ['text/x-diff'],
      },
    },
    async (request, reply) => {
      const { id, n } = request.params;
      return sendPatch(reply, `${id}.turn-${n}`, await service.turnPatch(request.tenant, id, n));
    },
  );
};

function sendPatch(
  reply: FastifyReply,
  name: string,
  patch: { body: Readable; size: number },
): FastifyReply {
  return reply
    .header('content-type', 'text/x-diff; charset=utf-8')
    .header('content-length', patch.size)
    .header('content-disposition', `attachment; filename="${name}.diff"`)
    .send(patch.body);
}
