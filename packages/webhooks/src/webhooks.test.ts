import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postJson } from './sender.js';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { newSecret, signPayload, signatureHeaders, verifySignature } from './signature.js';
import { WebhookUrlPolicy } from './url-policy.js';

describe('signatures', () => {
  const secret = newSecret();
  const body = '{"type":"task.succeeded"}';
  const at = new Date('2026-11-29T10:00:00Z');

  it('signs "t.body" with HMAC-SHA256, as the README tells receivers to check', () => {
    const header = signPayload([secret], body, at);
    const t = Math.floor(at.getTime() / 1000);
    const hex = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
    expect(header).toBe(`t=${t},v1=${hex}`);
    // The README's shell check, verbatim: openssl over "t.body".
    const openssl = execFileSync('openssl', ['dgst', '-sha256', '-hmac', secret], {
      input: `${t}.${body}`,
    })
      .toString()
      .trim()
      .split(' ')
      .at(-1);
    expect(openssl).toBe(hex);
  });

  it('verifies within the tolerance and refuses a changed body, another secret or an old stamp', () => {
    const header = signPayload([secret], body, at);
    expect(verifySignature(secret, body, header, { now: at })).toBe(true);
    expect(verifySignature(secret, `${body} `, header, { now: at })).toBe(false);
    expect(verifySignature('whsec_other', body, header, { now: at })).toBe(false);
    const later = new Date(at.getTime() + 301_000);
    expect(verifySignature(secret, body, header, { now: later })).toBe(false);
    expect(verifySignature(secret, body, 'garbage', { now: at })).toBe(false);
    expect(verifySignature(secret, body, `${header},v1=${'0'.repeat(64)}`, { now: at })).toBe(true);
  });

  it('makes Standard Webhooks headers the standardwebhooks package verifies, one signature per secret', () => {
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{32}$/);
    const old = newSecret();
    const headers = signatureHeaders([secret, old], 'whd_1', body);
    expect(headers['webhook-id']).toBe('whd_1');
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    // Either secret verifies, as a receiver in the middle of a rotation has one or the other.
    for (const key of [secret, old])
      expect(new Webhook(key).verify(body, headers)).toEqual(JSON.parse(body));
    expect(() => new Webhook(newSecret()).verify(body, headers)).toThrow(WebhookVerificationError);
    expect(() => new Webhook(secret).verify(`${body} `, headers)).toThrow(WebhookVerificationError);
    // The id is signed: the same signature under another id is refused.
    expect(() => new Webhook(secret).verify(body, { ...headers, 'webhook-id': 'whd_2' })).toThrow(
      WebhookVerificationError,
    );
    // A stale timestamp is refused (the library allows five minutes).
    const stale = signatureHeaders([secret], 'whd_1', body, new Date(Date.now() - 600_000));
    expect(() => new Webhook(secret).verify(body, stale)).toThrow(WebhookVerificationError);
    // Patchbay-Signature rides along, with both secrets too.
    expect(verifySignature(old, body, headers['patchbay-signature']!)).toBe(true);
  });

  it("keys an operator's secret without the whsec_ prefix as raw bytes", () => {
    const operator = 'an operator chose this secret';
    const headers = signatureHeaders([operator], 'whd_9', body);
    expect(new Webhook(operator, { format: 'raw' }).verify(body, headers)).toEqual(
      JSON.parse(body),
    );
  });
});

describe('webhook URL policy', () => {
  const resolver = (answers: Record<string, string[]>) => async (host: string) =>
    (answers[host] ?? []).map((address) => ({ address }));
  const policy = new WebhookUrlPolicy({
    allowHosts: ['http://hooks.internal:8080', '127.0.0.1'],
    resolver: resolver({
      'public.example': ['93.184.216.34'],
      'rebind.example': ['93.184.216.34', '10.1.2.3'],
      'metadata.example': ['169.254.169.254'],
      'mapped.example': ['::ffff:127.0.0.1'],
      'hooks.internal': ['10.9.9.9'],
    }),
  });
  const reason = async (url: string) => {
    try {
      await policy.check(url);
      return 'ok';
    } catch (err) {
      return (err as { details?: { reason?: string } }).details?.reason;
    }
  };

  it.each([
    ['https://public.example/hook', 'ok'],
    ['https://rebind.example/hook', 'resolves_to_private_address'],
    ['https://metadata.example/hook', 'resolves_to_private_address'],
    ['https://mapped.example/hook', 'resolves_to_private_address'],
    ['http://hooks.internal:8080/hook', 'ok'],
    ['http://hooks.internal:8081/hook', 'resolves_to_private_address'],
    ['https://127.0.0.1/hook', 'ok'],
    ['http://127.0.0.1/hook', 'private_address'],
    ['http://0x7f.1/hook', 'private_address'],
    ['http://2130706433/hook', 'private_address'],
    ['http://[fd00::1]/hook', 'private_address'],
    ['https://nowhere.example/hook', 'dns'],
    ['https://public.example/\\hook', 'invalid_url'],
    ['javascript:alert(1)', 'scheme_not_allowed'],
    ['https://public.example:99999/hook', 'invalid_url'],
  ])('%s: %s', async (url, expected) => {
    expect(await reason(url)).toBe(expected);
  });

  it('returns the addresses it checked, to connect to those only', async () => {
    const checked = await policy.check('https://public.example/hook?x=1#frag');
    expect(checked).toEqual({
      url: 'https://public.example/hook?x=1',
      scheme: 'https',
      host: 'public.example',
      port: 443,
      addresses: ['93.184.216.34'],
    });
  });
});

describe('sending', () => {
  let server: Server;
  let other: Server;
  let port: number;
  let otherHits = 0;
  const seen: { url: string; headers: IncomingHttpHeaders; body: string }[] = [];

  beforeAll(async () => {
    other = createServer((_req, res) => {
      otherHits++;
      res.end();
    }).listen(0, '127.0.0.1');
    await once(other, 'listening');
    const otherPort = (other.address() as { port: number }).port;
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ url: req.url ?? '', headers: req.headers, body });
        if (req.url === '/redirect')
          res.writeHead(302, { location: `http://127.0.0.1:${otherPort}/` }).end();
        else if (req.url === '/slow') setTimeout(() => res.end(), 2000);
        else res.writeHead(200).end('x'.repeat(100_000));
      });
    }).listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as { port: number }).port;
  });

  afterAll(() => {
    server.closeAllConnections();
    server.close();
    other.close();
  });

  const target = (path: string) => ({
    // A name no DNS knows: the request can only reach the server through the pinned address.
    url: `http://hooks.invalid:${port}${path}`,
    scheme: 'http' as const,
    host: 'hooks.invalid',
    port,
    addresses: ['127.0.0.1'],
  });

  it('connects to the pinned address, with the name as Host, and drops a large answer', async () => {
    const outcome = await postJson(target('/ok'), '{"a":1}', { 'patchbay-event': 'x' }, 5000);
    expect(outcome).toMatchObject({ ok: true, statusCode: 200, error: null });
    expect(seen.at(-1)).toMatchObject({
      url: '/ok',
      body: '{"a":1}',
      headers: { host: `hooks.invalid:${port}`, 'patchbay-event': 'x' },
    });
  });

  it('does not follow a redirect, and gives up on a receiver that does not answer in time', async () => {
    const redirected = await postJson(target('/redirect'), '{}', {}, 5000);
    expect(redirected).toMatchObject({ ok: false, statusCode: 302 });
    expect(redirected.error).toContain('not followed');
    expect(otherHits).toBe(0);
    const slow = await postJson(target('/slow'), '{}', {}, 300);
    expect(slow).toMatchObject({ ok: false, statusCode: null });
  });
});
