import type { RedisEnvironmentIndex } from '@patchbay/store';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ERROR_RESPONSES } from '../schemas.js';

export interface EnvironmentRoutesDeps {
  index: RedisEnvironmentIndex;
}

const Environment = z.object({
  key: z.string(),
  repo: z.string(),
  image: z.string(),
  commit: z.string(),
  bytes: z.number(),
  createdAt: z.string(),
  lastUsedAt: z.string(),
  worker: z.string(),
});

const RepoQuery = z.strictObject({ repo: z.string().min(1).max(2048).optional() });

export const environmentRoutes: FastifyPluginAsyncZod<EnvironmentRoutesDeps> = async (
  app,
  { index },
) => {
  app.get(
    '/v1/environments',
    {
      schema: {
        summary: "The caller's cached environments (setup snapshots), most recently used first",
        querystring: RepoQuery,
        response: { 200: z.object({ environments: z.array(Environment) }), ...ERROR_RESPONSES },
      },
    },
    async (request) => ({
      environments: (await index.list(request.tenant, request.query.repo)).map(
        ({ tenant: _tenant, sha256: _sha, ...e }) => e,
      ),
    }),
  );

  app.delete(
    '/v1/environments',
    {
      schema: {
        summary: "Drop the caller's cached environments (of one repository with ?repo=)",
        description: 'The next task of each runs its setup again (and is cached anew).',
        querystring: RepoQuery,
        response: { 200: z.object({ dropped: z.number().int() }), ...ERROR_RESPONSES },
      },
    },
    async (request) => ({ dropped: await index.drop(request.tenant, request.query.repo) }),
  );
};
