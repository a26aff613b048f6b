import fastifyStatic from '@fastify/static';
import type { FastifyPluginAsync } from 'fastify';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface WebDeps {
  /** The built page (apps/web/dist): index.html and hashed files under assets/. */
  root: string;
}

/**
 * What the page may do: load its own scripts and styles, talk to this origin. No inline script
 * or style, no other origin, no framing, no plugins; a `<base>` or a form cannot redirect.
 */
const WEB_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** True when `root` holds a built page. */
export function hasWebBuild(root: string): boolean {
  return existsSync(join(root, 'index.html'));
}

/**
 * The web page at `/`: the files of the build, each route made at start from what is on disk
 * (nothing else under `/` answers but the API's own routes). Hashed assets are cached for a
 * year; index.html is revalidated on every load, so a new build is picked up at once.
 */
export const webRoutes: FastifyPluginAsync<WebDeps> = async (app, { root }) => {
  app.addHook('onSend', async (_request, reply, payload) => {
    void reply.header('content-security-policy', WEB_CSP);
    void reply.header('x-content-type-options', 'nosniff');
    void reply.header('referrer-policy', 'no-referrer');
    void reply.header('cross-origin-opener-policy', 'same-origin');
    void reply.header('x-frame-options', 'DENY');
    return payload;
  });
  await app.register(fastifyStatic, {
    root,
    prefix: '/',
    wildcard: false,
    index: ['index.html'],
    decorateReply: false,
    cacheControl: false,
    setHeaders: (reply, path) => {
      void reply.header(
        'cache-control',
        /[\\/]assets[\\/]/.test(path) ? 'public, max-age=31536000, immutable' : 'no-cache',
      );
    },
  });
};
