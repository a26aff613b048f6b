import { createHash, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from './config.js';

/**
 * The tenant a presented API key belongs to, or null. Keys are held only as SHA-256 digests and
 * compared in constant time; every configured key is compared, so timing says nothing about
 * which one (if any) matched.
 */
export function tenantForKey(keys: readonly ApiKey[], presented: string): string | null {
  const digest = createHash('sha256').update(presented, 'utf8').digest();
  let tenant: string | null = null;
  for (const key of keys) {
    if (timingSafeEqual(digest, Buffer.from(key.sha256, 'hex')) && tenant === null)
      tenant = key.tenant;
  }
  return tenant;
}
