import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyPluginAsync } from 'fastify';
import { presentsSecret } from '@patchbay/core';

/** Where the queue dashboard is mounted. */
const ADMIN_QUEUES_PATH = '/admin/queues';

export interface AdminRouteOptions {
  /** The admin key; every dashboard request (pages, assets, its JSON API) must present it. */
  key: string;
  /** The BullMQ queue(s) to show. */
  queues: Queue[];
}

/**
 * bull-board at {@link ADMIN_QUEUES_PATH}, behind the admin key. The dashboard can retry, promote
 * and delete jobs, so it is not a tenant feature: one operator key, compared in constant time,
 * accepted as a bearer token or as the password of basic auth (what a browser's prompt sends).
 */
export const adminRoutes: FastifyPluginAsync<AdminRouteOptions> = async (app, options) => {
  app.addHook('onRequest', async (request, reply) => {
    if (presentsSecret(request.headers.authorization, options.key)) return;
    await reply
      .code(401)
      .header('www-authenticate', 'Basic realm="patchbay admin", charset="UTF-8"')
      .send({
        error: { code: 'unauthorized', message: 'the queue dashboard needs the admin key' },
      });
  });
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
  createBullBoard({
    queues: options.queues.map((queue) => new BullMQAdapter(queue)),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Patchbay' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: ADMIN_QUEUES_PATH });
};
