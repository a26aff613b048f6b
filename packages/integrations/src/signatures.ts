import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Webhooks } from '@octokit/webhooks';
import type { Integration } from '@patchbay/core';
import type { ForgeName } from './payloads.js';

export type Headers = Record<string, string | string[] | undefined>;

const header = (headers: Headers, ...names: string[]): string | undefined => {
  for (const name of names) {
    const value = headers[name];
    const one = Array.isArray(value) ? value[0] : value;
    if (one !== undefined && one !== '') return one;
  }
  return undefined;
};

/** A delivery's event name and id as the forge's headers give them. */
export function deliveryOf(
  forge: ForgeName,
  headers: Headers,
  body: string,
): { event: string; id: string } {
  const [event, id] =
    forge === 'github'
      ? [header(headers, 'x-github-event'), header(headers, 'x-github-delivery')]
      : forge === 'gitlab'
        ? [
            header(headers, 'x-gitlab-event'),
            header(headers, 'x-gitlab-event-uuid', 'idempotency-key'),
          ]
        : [
            header(headers, 'x-gitea-event', 'x-forgejo-event'),
            header(headers, 'x-gitea-delivery', 'x-forgejo-delivery'),
          ];
  // Without an id, the body is the delivery: a redelivery of it is the same bytes.
  return {
    event: event ?? '',
    id: id ?? `body-${createHash('sha256').update(body).digest('hex')}`,
  };
}

const sameText = (a: string, b: string): boolean => {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
};

const github = new Map<string, Webhooks>();

/**
 * Whether a delivery comes from the forge the integration is set up with: GitHub's
 * `X-Hub-Signature-256` checked by `@octokit/webhooks`, GitLab's `X-Gitlab-Token`, Gitea's (and
 * Forgejo's) hex HMAC-SHA256 of the body.
 */
export async function isSigned(
  integration: Integration,
  headers: Headers,
  body: string,
): Promise<boolean> {
  switch (integration.forge) {
    case 'github': {
      const signature = header(headers, 'x-hub-signature-256');
      if (signature === undefined) return false;
      let webhooks = github.get(integration.secret);
      if (webhooks === undefined) {
        webhooks = new Webhooks({ secret: integration.secret });
        github.set(integration.secret, webhooks);
      }
      return webhooks.verify(body, signature).catch(() => false);
    }
    case 'gitlab': {
      const token = header(headers, 'x-gitlab-token');
      return token !== undefined && sameText(token, integration.secret);
    }
    case 'gitea': {
      const signature = header(headers, 'x-gitea-signature', 'x-forgejo-signature');
      if (signature === undefined) return false;
      const expected = createHmac('sha256', integration.secret).update(body).digest('hex');
      return sameText(signature.replace(/^sha256=/, '').toLowerCase(), expected);
    }
  }
}
