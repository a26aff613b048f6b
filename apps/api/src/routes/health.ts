import type { FastifyPluginAsync } from 'fastify';

export interface HealthDeps {
  /** Resolves when Redis answers; rejects otherwise. */
  pingRedis: () => Promise<unknown>;
  /** Resolves when the Docker engine answers; rejects otherwise. */
  pingDocker: () => Promise<unknown>;
}

const PING_TIMEOUT_MS = 1000;

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `/healthz`: the process is alive. `/readyz`: Redis and Docker answer, so tasks can flow. */
export const healthRoutes: FastifyPluginAsync<HealthDeps> = async (app, deps) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [redis, docker] = await Promise.allSettled([
      withTimeout(deps.pingRedis(), PING_TIMEOUT_MS),
      withTimeout(deps.pingDocker(), PING_TIMEOUT_MS),
    ]);
    const checks = {
      redis: redis.status === 'fulfilled' ? 'ok' : 'unavailable',
      docker: docker.status === 'fulfilled' ? 'ok' : 'unavailable',
    };
    const ready = checks.redis === 'ok' && checks.docker === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
};
