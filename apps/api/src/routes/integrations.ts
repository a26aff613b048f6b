import type { MentionIntake } from '@patchbay/integrations';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_RESPONSES, ErrorBody } from '../schemas.js';

const Outcome = z.object({
  outcome: z.enum(['started', 'followed_up', 'duplicate', 'ignored']),
  taskId: z.string().optional(),
  turn: z.number().int().optional(),
  reason: z.string().optional(),
});

/**
 * `POST /v1/integrations/{forge}/events`: where a forge's webhooks go. No API key: the delivery
 * is authenticated by the integration's secret, which is why the body is kept as sent (the
 * signature is over its bytes) and parsed only once it is verified.
 */
export const integrationRoutes: FastifyPluginAsyncZod<{ intake: MentionIntake }> = async (
  app,
  { intake },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) =>
    done(null, body),
  );
  app.post(
    '/v1/integrations/:forge/events',
    {
      schema: {
        summary: 'Receive a forge webhook (GitHub, GitLab, Gitea/Forgejo)',
        description:
          'A comment that mentions Patchbay on an issue starts a task on that repository, answered ' +
          'with a comment linking it and delivered as a pull request; on a pull request Patchbay ' +
          'opened it is a follow-up turn on the same branch; an issue assigned to Patchbay starts ' +
          'a task. Signed with the integration secret (GitHub `X-Hub-Signature-256`, GitLab ' +
          '`X-Gitlab-Token`, Gitea `X-Gitea-Signature`). 202 when work starts; 200 for a delivery ' +
          'seen before (`duplicate`) or one Patchbay does not act on (`ignored`, with the reason).',
        params: z.strictObject({ forge: z.enum(['github', 'gitlab', 'gitea']) }),
        security: [],
        response: { 200: Outcome, 202: Outcome, ...ERROR_RESPONSES, 502: ErrorBody },
      },
    },
    async (request, reply) => {
      const body = typeof request.body === 'string' ? request.body : '';
      const outcome = await intake.receive(
        request.params.forge,
        request.headers,
        body,
        request.log,
      );
      const started = outcome.outcome === 'started' || outcome.outcome === 'followed_up';
      return reply.code(started ? 202 : 200).send(outcome);
    },
  );
};
