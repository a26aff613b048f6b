import {
  DEFAULT_ROTATION_GRACE_SECONDS,
  EVENT_TYPES,
  type WebhookRegistry,
} from '@patchbay/webhooks';
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
  status: z.enum(['active', 'disabled']),
  disabledAt: z.string().nullable(),
  disabledReason: z.string().nullable(),
  previousSecretExpiresAt: z.string().nullable(),
});

/** The longest a rotated-out secret may keep signing. */
const MAX_GRACE_SECONDS = 7 * 86_400;

const Rotation = z
  .strictObject({
    graceSeconds: z
      .number()
      .int()
      .min(0)
      .max(MAX_GRACE_SECONDS)
      .default(DEFAULT_ROTATION_GRACE_SECONDS)
      .describe(
        'How long the old secret keeps signing beside the new one (a second signature in each header); 0 ends it now.',
      ),
  })
  .default({ graceSeconds: DEFAULT_ROTATION_GRACE_SECONDS });

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
          'signed by the Standard Webhooks convention (`webhook-id`, `webhook-timestamp`, ' +
          '`webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`; any Standard ' +
          'Webhooks library verifies it with the `whsec_` secret answered here, once) and with ' +
          '`Patchbay-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. A receiver ' +
          'answering 410 Gone disables the webhook. Private, loopback, link-local and metadata ' +
          'addresses are refused (422 `webhook_url_refused`) unless the operator allows the host.',
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

  app.post(
    '/v1/webhooks/:id/rotate',
    {
      schema: {
        summary: "Replace a webhook's secret",
        description:
          'Answers the new secret, once. For `graceSeconds` (a day unless given, at most 7 days) ' +
          'every delivery carries a signature by the old secret beside the new one, so a ' +
          "receiver can switch when it likes. An operator's webhook is a 409: its secret is in " +
          'the configuration.',
        params: WebhookParams,
        body: Rotation,
        response: { 200: Webhook.extend({ secret: z.string() }), ...errors },
      },
    },
    async (request) => {
      const { webhook, secret } = await registry.rotate(
        request.tenant,
        request.params.id,
        request.body.graceSeconds,
      );
      return { ...webhook, secret };
    },
  );

  app.post(
    '/v1/webhooks/:id/enable',
    {
      schema: {
        summary: 'Send to a disabled webhook again',
        description: 'From the next event on; what was dropped while it was disabled is not sent.',
        params: WebhookParams,
        response: { 200: Webhook, ...errors },
      },
    },
    async (request) => registry.enable(request.tenant, request.params.id),
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

  app.post(
    '/v1/webhooks/notify-secret/rotate',
    {
      schema: {
        summary: "Replace the secret signing the caller's task `notify` deliveries",
        description:
          'The old secret keeps signing beside the new one for `graceSeconds`, as for a webhook.',
        body: Rotation,
        response: {
          200: z.object({ secret: z.string(), previousSecretExpiresAt: z.string().nullable() }),
          ...errors,
        },
      },
    },
    async (request) => registry.rotateNotifySecret(request.tenant, request.body.graceSeconds),
  );
};
