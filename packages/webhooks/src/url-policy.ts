import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  HostSyntaxError,
  PatchbayError,
  normaliseHost,
  parseHostRule,
  specialRangeOfAnswer,
  type HostRule,
} from '@patchbay/core';

/** Why a webhook URL was refused; `details.reason` of `webhook_url_refused`. */
export type WebhookUrlRefusal =
  | 'invalid_url'
  | 'scheme_not_allowed'
  | 'credentials'
  | 'invalid_host'
  | 'private_address'
  | 'resolves_to_private_address'
  | 'dns';

/** Resolves a host to every address it has. */
export type Resolver = (host: string) => Promise<readonly { address: string }[]>;

const defaultResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/** A webhook URL that passed: what to POST to, and the addresses to connect to (DNS pinned). */
export interface CheckedWebhookUrl {
  url: string;
  scheme: 'https' | 'http';
  host: string;
  port: number;
  addresses: readonly string[];
}

/**
 * Where webhooks may go: anywhere public over https or http, never to a private, loopback,
 * link-local, metadata or otherwise special address (by literal or by what the name resolves
 * to), unless the operator lists the host (`PATCHBAY_WEBHOOK_ALLOW_HOSTS`, entries as for
 * repository hosts: `hooks.internal`, `http://127.0.0.1:9000`).
 */
export class WebhookUrlPolicy {
  readonly #allowed: readonly HostRule[];
  readonly #resolver: Resolver;

  constructor(options: { allowHosts?: readonly string[]; resolver?: Resolver } = {}) {
    this.#allowed = (options.allowHosts ?? []).map((entry) => parseHostRule(entry));
    this.#resolver = options.resolver ?? defaultResolver;
  }

  /**
   * Checks a URL and resolves its host once: connect to the returned `addresses` only, so that a
   * second DNS answer cannot send the request elsewhere.
   * @throws PatchbayError `webhook_url_refused` with `details.reason`
   */
  async check(raw: string): Promise<CheckedWebhookUrl> {
    const { url, scheme, host, port } = parse(raw);
    const allowed = this.#allowed.some(
      (rule) =>
        rule.exact &&
        rule.host === host &&
        (rule.scheme === 'default' ? scheme === 'https' : rule.scheme === scheme) &&
        (rule.port ?? (scheme === 'https' ? 443 : 80)) === port,
    );
    if (isIP(host) !== 0) {
      if (!allowed) refuseSpecial(host, host, 'private_address');
      return { url, scheme, host, port, addresses: [host] };
    }
    if (!allowed && (host === 'localhost' || host.endsWith('.localhost'))) {
      throw refusal('private_address', `${host} is a loopback name`);
    }
    let answers: readonly { address: string }[];
    try {
      answers = await this.#resolver(host);
    } catch {
      answers = [];
    }
    if (answers.length === 0) throw refusal('dns', `${host} does not resolve`);
    const addresses = [...new Set(answers.map((a) => a.address))];
    if (!allowed)
      for (const address of addresses) refuseSpecial(host, address, 'resolves_to_private_address');
    return { url, scheme, host, port, addresses };
  }
}

function parse(raw: string): Omit<CheckedWebhookUrl, 'addresses'> {
  if (raw.length > 2048 || /[\s\p{Cc}\p{Cf}\\]/u.test(raw)) {
    throw refusal(
      'invalid_url',
      'the URL is too long or holds whitespace, controls or backslashes',
    );
  }
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw refusal('invalid_url', 'not an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw refusal('scheme_not_allowed', `${url.protocol}// is not allowed; use https://`);
  }
  if (url.username !== '' || url.password !== '') {
    throw refusal(
      'credentials',
      'credentials in the URL are not allowed; the signature authenticates',
    );
  }
  let host: string;
  try {
    host = normaliseHost(url.hostname);
  } catch (err) {
    if (err instanceof HostSyntaxError) throw refusal('invalid_host', err.message);
    throw err;
  }
  const scheme = url.protocol === 'https:' ? 'https' : 'http';
  const port = url.port === '' ? (scheme === 'https' ? 443 : 80) : Number(url.port);
  url.hash = '';
  return { url: url.toString(), scheme, host, port };
}

function refuseSpecial(host: string, address: string, reason: WebhookUrlRefusal): void {
  const range = specialRangeOfAnswer(address);
  if (range) {
    throw refusal(
      reason,
      host === address
        ? `${address} is a ${range.kind.replace('_', '-')} address`
        : `${host} resolves to ${address}, a ${range.kind.replace('_', '-')} address`,
      { address, range: range.cidr },
    );
  }
}

function refusal(
  reason: WebhookUrlRefusal,
  message: string,
  extra: Record<string, unknown> = {},
): PatchbayError {
  return new PatchbayError('webhook_url_refused', `webhook URL refused: ${message}`, {
    details: { reason, ...extra },
  });
}
