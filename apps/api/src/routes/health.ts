import type { FastifyPluginAsync } from 'fastify';

export interface HealthDeps {
  /** Resolves when Redis answers; rejects otherwise. */
  pingRedis: () => Promise<unknown>;
  /** Resolves when the sandbox backend (the Docker engine) answers; rejects otherwise. */
  pingSandboxes: () => Promise<unknown>;
}

const PING_TIMEOUT_MS = 1000;

function withTimeout(promise: Promise<unknown>, ms: number): Promise<unknown> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** `/healthz`: the process is alive. `/readyz`: Redis and the sandbox backend answer, so tasks can flow. */
export const healthRoutes: FastifyPluginAsync<HealthDeps> = async (app, deps) => {
  app.get('/healthz', async () => ({ status: 'ok' }));

  app.get('/readyz', async (_request, reply) => {
    const [redis, sandboxes] = await Promise.allSettled([
      withTimeout(deps.pingRedis(), PING_TIMEOUT_MS),
      withTimeout(deps.pingSandboxes(), PING_TIMEOUT_MS),
    ]);
    const checks = {
      redis: redis.status === 'fulfilled' ? 'ok' : 'unavailable',
      sandboxes: sandboxes.status === 'fulfilled' ? 'ok' : 'unavailable',
    };
    const ready = checks.redis === 'ok' && checks.sandboxes === 'ok';
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'unavailable', checks });
  });
};
