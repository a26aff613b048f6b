import Fastify, { type FastifyInstance } from 'fastify';
import { healthRoutes, type HealthDeps } from './routes/health.js';

export interface AppDeps extends HealthDeps {
  logger?: boolean | { level: string };
}

/** Builds the HTTP app without listening, so tests can drive it with `app.inject`. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const app = Fastify({
    logger: deps.logger ?? false,
    disableRequestLogging: false,
    bodyLimit: 1024 * 1024,
  });
  app.register(healthRoutes, deps);
  return app;
}
