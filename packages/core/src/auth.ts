import { hash, timingSafeEqual } from 'node:crypto';
import type { ApiKey } from './config.js';

/**
 * Every secret a request presents (tenant keys, the metrics token, the admin key) is read and
 * compared here, once for the API and the worker alike.
 */

const digest = (s: string): Buffer => hash('sha256', s, 'buffer');

/** The configured keys' digests as bytes, decoded once per key list. */
const keyDigests = new WeakMap<readonly ApiKey[], Buffer[]>();

/**
 * Whether `presented` equals `expected`, in time that does not depend on where they differ
 * (both are hashed first, so their lengths leak nothing either).
 */
export function sameSecret(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

/** The token of an `Authorization: Bearer <token>` header (one word, at most 512 characters). */
export function bearerToken(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  return /^Bearer\s+(\S{1,512})\s*$/i.exec(header)?.[1];
}

/**
 * The secret an `Authorization` header carries: a bearer token, or the password of basic auth
 * (the user name is ignored), so that a browser's own prompt and a Prometheus `basic_auth` work
 * as well as a bearer.
 */
export function presentedSecret(header: string | undefined): string | undefined {
  if (typeof header !== 'string') return undefined;
  const bearer = bearerToken(header);
  if (bearer !== undefined) return bearer;
  const basic = /^Basic\s+([A-Za-z0-9+/=]{1,1024})\s*$/i.exec(header);
  if (!basic) return undefined;
  const decoded = Buffer.from(basic[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** Whether the header presents `expected` (as a bearer token or a basic-auth password). */
export function presentsSecret(header: string | undefined, expected: string): boolean {
  const presented = presentedSecret(header);
  return presented !== undefined && sameSecret(presented, expected);
}

/**
 * The tenant a presented API key belongs to, or null. Keys are held only as SHA-256 digests and
 * compared in constant time; every configured key is compared, so timing says nothing about
 * which one (if any) matched.
 */
export function tenantForKey(keys: readonly ApiKey[], presented: string): string | null {
  const presentedDigest = digest(presented);
  let expected = keyDigests.get(keys);
  if (expected === undefined) {
    expected = keys.map((key) => Buffer.from(key.sha256, 'hex'));
    keyDigests.set(keys, expected);
  }
  let tenant: string | null = null;
  keys.forEach((key, i) => {
    if (timingSafeEqual(presentedDigest, expected[i]!) && tenant === null) tenant = key.tenant;
  });
  return tenant;
}
