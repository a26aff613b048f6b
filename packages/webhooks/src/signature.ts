import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * A new signing secret: `whsec_` and 24 random bytes in standard base64, the form Standard
 * Webhooks libraries take as it is.
 */
export function newSecret(): string {
  return `whsec_${randomBytes(24).toString('base64')}`;
}

/**
 * The signature headers of one try of a delivery, by two conventions at once, each with one
 * signature per secret in `secrets` (the current one, and during a rotation the one before):
 *
 * - Standard Webhooks (standardwebhooks.com; what `standardwebhooks`, `svix` and their ports
 *   verify): `webhook-id` (the delivery id, the same on every retry), `webhook-timestamp` (unix
 *   seconds of this try) and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 *   space-separated. The key is the secret's base64 after `whsec_` decoded; a secret an operator
 *   wrote without that prefix is used as its UTF-8 bytes (receivers pass it as a raw key).
 * - `Patchbay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">` (Stripe's scheme),
 *   keyed with the secret string as it is, kept for receivers written against it.
 */
export function signatureHeaders(
  secrets: readonly string[],
  id: string,
  body: string,
  at: Date = new Date(),
): Record<string, string> {
  const t = Math.floor(at.getTime() / 1000);
  return {
    'webhook-id': id,
    'webhook-timestamp': String(t),
    'webhook-signature': secrets
      .map(
        (s) =>
          `v1,${createHmac('sha256', standardKey(s)).update(`${id}.${t}.${body}`).digest('base64')}`,
      )
      .join(' '),
    'patchbay-signature': signPayload(secrets, body, at),
  };
}

/** `Patchbay-Signature` alone: `t=<t>` and a `v1=` entry per secret. */
export function signPayload(
  secrets: readonly string[],
  body: string,
  at: Date = new Date(),
): string {
  const t = Math.floor(at.getTime() / 1000);
  return [`t=${t}`, ...secrets.map((s) => `v1=${hmacHex(s, `${t}.${body}`)}`)].join(',');
}

/**
 * Checks a `Patchbay-Signature` header against the body, as a receiver would: any `v1` entry
 * may match (several during a secret's rotation), and the timestamp must be within
 * `toleranceSeconds` of `now`.
 */
export function verifySignature(
  secret: string,
  body: string,
  header: string,
  options: { toleranceSeconds?: number; now?: Date } = {},
): boolean {
  const parts = header.split(',').map((p) => p.trim().split('='));
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t)) return false;
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - t) > (options.toleranceSeconds ?? 300)) return false;
  const expected = Buffer.from(hmacHex(secret, `${t}.${body}`), 'hex');
  return parts.some(([k, v]) => {
    if (k !== 'v1' || v === undefined || !/^[0-9a-f]{64}$/.test(v)) return false;
    return timingSafeEqual(Buffer.from(v, 'hex'), expected);
  });
}

/** The Standard Webhooks key of a secret. */
function standardKey(secret: string): Buffer {
  return secret.startsWith('whsec_')
    ? Buffer.from(secret.slice('whsec_'.length), 'base64')
    : Buffer.from(secret, 'utf8');
}

function hmacHex(secret: string, text: string): string {
  return createHmac('sha256', secret).update(text).digest('hex');
}
