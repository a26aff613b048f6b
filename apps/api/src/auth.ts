import { type ApiKey, PatchbayError, bearerToken, tenantForKey } from '@patchbay/core';
import type { FastifyRequest } from 'fastify';

/** The tenant every request belongs to when the server runs without keys (loopback only). */
const LOCAL_TENANT = 'local';

declare module 'fastify' {
  interface FastifyRequest {
    tenant: string;
  }
}

/** An onRequest hook: `Authorization: Bearer <key>` → `request.tenant`, or 401. */
export function authenticate(keys: readonly ApiKey[]) {
  return async (request: FastifyRequest): Promise<void> => {
    if (keys.length === 0) {
      request.tenant = LOCAL_TENANT;
      return;
    }
    const header = request.headers.authorization;
    const token = bearerToken(header);
    const tenant = token === undefined ? null : tenantForKey(keys, token);
    if (tenant === null) {
      throw new PatchbayError(
        'unauthorized',
        header
          ? 'the API key is not valid'
          : 'an API key is required (Authorization: Bearer <key>)',
      );
    }
    request.tenant = tenant;
  };
}
