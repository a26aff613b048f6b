import { EVENT_TYPES, type WebhookRegistry } from '@patchbay/webhooks';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_RESPONSES } from '../schemas.js';

export interface WebhookRoutesDeps {
  registry: WebhookRegistry;
}

const errors = ERROR_RESPONSES;

const EventType = z.enum(EVENT_TYPES);

const Webhook = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(EventType).nullable(),
  description: z.string().nullable(),
  createdAt: z.string(),
  source: z.enum(['api', 'config']),
});

const WebhookParams = z.object({
  id: z.string().regex(/^(wh|whc)_[0-9a-f]{16,32}$/, 'not a webhook id'),
});

const DeliveryAttempt = z.object({
  deliveryId: z.string(),
  event: z.string(),
  taskId: z.string(),
  attempt: z.number().int(),
  outcome: z.enum(['delivered', 'retrying', 'gave_up']),
  statusCode: z.number().int().nullable(),
  error: z.string().nullable(),
  durationMs: z.number(),
  at: z.string(),
});

export const webhookRoutes: FastifyPluginAsyncZod<WebhookRoutesDeps> = async (
  app,
  { registry },
) => {
  app.post(
    '/v1/webhooks',
    {
      schema: {
        summary: 'Register a webhook',
        description:
          "Every lifecycle event of the caller's tasks (or those in `events`) is POSTed to `url`, " +
          'signed: `Patchbay-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the ' +
          'secret answered here, once. Private, loopback, link-local and metadata addresses are ' +
          'refused (422 `webhook_url_refused`) unless the operator allows the host.',
        body: z.strictObject({
          url: z.string().min(1).max(2048),
          events: z.array(EventType).min(1).max(EVENT_TYPES.length).optional(),
          description: z.string().max(200).optional(),
        }),
        response: { 201: Webhook.extend({ secret: z.string() }), ...errors },
      },
    },
    async (request, reply) => {
      const { webhook, secret } = await registry.create(request.tenant, request.body);
      return reply
        .code(201)
        .header('location', `/v1/webhooks/${webhook.id}`)
        .send({ ...webhook, secret });
    },
  );

  app.get(
    '/v1/webhooks',
    {
      schema: {
        summary: "The caller's webhooks (secrets are never shown again)",
        response: { 200: z.object({ webhooks: z.array(Webhook) }), ...errors },
      },
    },
    async (request) => ({ webhooks: await registry.list(request.tenant) }),
  );

  app.delete(
    '/v1/webhooks/:id',
    {
      schema: {
        summary: 'Delete a webhook',
        params: WebhookParams,
        response: { 204: z.null(), ...errors },
      },
    },
    async (request, reply) => {
      await registry.delete(request.tenant, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/v1/webhooks/:id/deliveries',
    {
      schema: {
        summary: "A webhook's delivery log, newest first",
        description:
          'Every try: the event, its delivery id, the answer (status code or error) and what came next.',
        params: WebhookParams,
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(200).default(50) }),
        response: { 200: z.object({ deliveries: z.array(DeliveryAttempt) }), ...errors },
      },
    },
    async (request) => ({
      deliveries: await registry.deliveries(request.tenant, request.params.id, request.query.limit),
    }),
  );

  app.get(
    '/v1/webhooks/notify-secret',
    {
      schema: {
        summary: "The secret signing the caller's task `notify` deliveries",
        response: { 200: z.object({ secret: z.string() }), ...errors },
      },
    },
    async (request) => ({ secret: await registry.notifySecret(request.tenant) }),
  );
};
