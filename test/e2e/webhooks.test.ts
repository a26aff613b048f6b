import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { verifySignature } from '@patchbay/webhooks';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatch, scenarioScript, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * Webhooks on the real stack: a receiver on 127.0.0.1 (allowed by the operator) that checks
 * every signature and is down for its first requests; every lifecycle event of a task must still
 * arrive, in order, with retries carrying the same delivery id.
 */
interface Received {
  path: string;
  status: number;
  event: string;
  delivery: string;
  signature: string;
  /** The Standard Webhooks headers. */
  standard: Record<string, string>;
  body: string;
}

let stack: Stack;
let receiver: Server;
let port: number;
const received: Received[] = [];
/** Requests answered 503 before the receiver comes up. */
let downFor = 0;
/** Paths answered 410 Gone. */
const gone = new Set<string>();

const CREATE = `*** Begin Patch
*** Add File: notes.txt
+line one
*** End Patch`;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = gone.has(req.url ?? '') ? 410 : downFor > 0 ? 503 : 204;
      if (status === 503) downFor--;
      received.push({
        path: req.url ?? '',
        status,
        event: String(req.headers['patchbay-event']),
        delivery: String(req.headers['patchbay-delivery']),
        signature: String(req.headers['patchbay-signature']),
        standard: Object.fromEntries(
          ['webhook-id', 'webhook-timestamp', 'webhook-signature'].map((h) => [
            h,
            String(req.headers[h]),
          ]),
        ),
        body: Buffer.concat(chunks).toString(),
      });
      res.writeHead(status).end();
    });
  });
  receiver.listen(0, '127.0.0.1');
  await once(receiver, 'listening');
  port = (receiver.address() as { port: number }).port;
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    env: {
      PATCHBAY_WEBHOOK_ALLOW_HOSTS: `http://127.0.0.1:${port}`,
      PATCHBAY_WEBHOOK_BACKOFF_MS: '200',
    },
    script: scenarioScript({ create: steps([applyPatch(CREATE)]) }),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  receiver?.close();
});

async function until<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
): Promise<T> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline)
      throw new Error(
        `timed out waiting for ${what}: ${JSON.stringify(received.map((r) => [r.path, r.status, r.event]))}`,
      );
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('webhooks', () => {
  it('delivers every lifecycle event, signed, in order, through a receiver that is down at first', async () => {
    const created = await call(stack, 'POST', '/v1/webhooks', {
      url: `http://127.0.0.1:${port}/hook`,
      description: 'ci',
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const { id: hookId, secret } = created.body;
    expect(secret).toMatch(/^whsec_/);
    const listed = await call(stack, 'GET', '/v1/webhooks');
    expect(listed.body.webhooks).toEqual([expect.objectContaining({ id: hookId, source: 'api' })]);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
    const notifySecret = (await call(stack, 'GET', '/v1/webhooks/notify-secret')).body.secret;

    downFor = 4;
    const res = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Add notes. SCENARIO:create',
      notify: { url: `http://127.0.0.1:${port}/notify` },
    });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = res.body.id as string;
    expect(res.body.notify).toEqual({ url: `http://127.0.0.1:${port}/notify` });
    const task = await waitForTask(stack, id);
    expect(task.status).toBe('succeeded');

    const expected = ['task.queued', 'task.started', 'task.succeeded'];
    for (const path of ['/hook', '/notify']) {
      const ok = await until(`${path} deliveries`, () => {
        const got = received.filter((r) => r.path === path && r.status === 204);
        return got.length >= expected.length ? got : undefined;
      });
      // Every event once, in the outbox's order, each signed with the target's secret.
      expect(ok.map((r) => r.event)).toEqual(expected);
      const bodies = ok.map((r) => JSON.parse(r.body));
      expect(bodies.map((b) => b.type)).toEqual(expected);
      expect(bodies.every((b) => b.taskId === id && b.id.startsWith('whd_'))).toBe(true);
      const sequences = bodies.map((b) => b.sequence as string);
      expect([...sequences].sort(bySequence)).toEqual(sequences);
      expect(bodies.at(-1).task).toMatchObject({ id, status: 'succeeded' });
      const key = path === '/hook' ? secret : notifySecret;
      for (const r of ok) {
        // Standard Webhooks, checked by the standardwebhooks package itself.
        expect(new Webhook(key).verify(r.body, r.standard)).toEqual(JSON.parse(r.body));
        expect(() => new Webhook(key).verify(`${r.body} `, r.standard)).toThrow(
          WebhookVerificationError,
        );
        expect(r.standard['webhook-id']).toBe(JSON.parse(r.body).id);
        // Patchbay-Signature, for receivers written against it.
        expect(verifySignature(key, r.body, r.signature)).toBe(true);
        expect(verifySignature(key, `${r.body} `, r.signature)).toBe(false);
        expect(r.delivery).toBe(JSON.parse(r.body).id);
      }
      // What was refused while the receiver was down came again with the same delivery id, and
      // the same webhook-id.
      const refused = received.filter((r) => r.path === path && r.status === 503);
      for (const r of refused) {
        expect(ok.map((o) => o.delivery)).toContain(r.delivery);
        expect(r.standard['webhook-id']).toBe(r.delivery);
      }
    }
    expect(received.filter((r) => r.status === 503)).toHaveLength(4);

    const log = await call(stack, 'GET', `/v1/webhooks/${hookId}/deliveries`);
    expect(log.status).toBe(200);
    const outcomes = log.body.deliveries.map((d: any) => `${d.event} ${d.outcome} ${d.statusCode}`);
    expect(outcomes).toContain('task.succeeded delivered 204');
    expect(outcomes.filter((o: string) => o.endsWith('retrying 503')).length).toBeGreaterThan(0);

    expect((await call(stack, 'DELETE', `/v1/webhooks/${hookId}`)).status).toBe(204);
    expect((await call(stack, 'DELETE', `/v1/webhooks/${hookId}`)).status).toBe(404);
    expect((await call(stack, 'GET', `/v1/webhooks/${hookId}/deliveries`)).status).toBe(404);
  }, 120_000);

  it('rotates a secret: both sign during the grace, then only the new one', async () => {
    const created = await call(stack, 'POST', '/v1/webhooks', {
      url: `http://127.0.0.1:${port}/rotating`,
      events: ['task.queued'],
    });
    expect(created.status).toBe(201);
    const { id: hookId, secret: first } = created.body;
    const queuedAt = async (): Promise<Received> => {
      const res = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'Add notes. SCENARIO:create',
      });
      expect(res.status).toBe(202);
      const got = await until('the rotating delivery', () =>
        received.find((r) => r.path === '/rotating' && JSON.parse(r.body).taskId === res.body.id),
      );
      await waitForTask(stack, res.body.id);
      return got;
    };

    const rotated = await call(stack, 'POST', `/v1/webhooks/${hookId}/rotate`, {
      graceSeconds: 2,
    });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const second = rotated.body.secret as string;
    expect(second).toMatch(/^whsec_/);
    expect(second).not.toBe(first);
    expect(Date.parse(rotated.body.previousSecretExpiresAt)).toBeGreaterThan(Date.now());
    const listed = await call(stack, 'GET', '/v1/webhooks');
    expect(JSON.stringify(listed.body)).not.toContain(second);

    // Within the grace a receiver holding either secret accepts the delivery.
    const during = await queuedAt();
    expect(during.standard['webhook-signature']!.split(' ')).toHaveLength(2);
    for (const key of [first, second]) {
      expect(new Webhook(key).verify(during.body, during.standard)).toBeTruthy();
      expect(verifySignature(key, during.body, during.signature)).toBe(true);
    }

    // After it, only the new secret signs.
    await new Promise((resolve) => setTimeout(resolve, 2500));
    const after = await queuedAt();
    expect(new Webhook(second).verify(after.body, after.standard)).toBeTruthy();
    expect(() => new Webhook(first).verify(after.body, after.standard)).toThrow(
      WebhookVerificationError,
    );
    expect(verifySignature(first, after.body, after.signature)).toBe(false);
    const view = (await call(stack, 'GET', '/v1/webhooks')).body.webhooks.find(
      (w: any) => w.id === hookId,
    );
    expect(view.previousSecretExpiresAt).toBeNull();

    // The notify secret rotates the same way; grace 0 ends the old one at once.
    const notifyOld = (await call(stack, 'GET', '/v1/webhooks/notify-secret')).body.secret;
    const notifyNew = await call(stack, 'POST', '/v1/webhooks/notify-secret/rotate', {
      graceSeconds: 0,
    });
    expect(notifyNew.status).toBe(200);
    expect(notifyNew.body).toEqual({
      secret: expect.stringMatching(/^whsec_/),
      previousSecretExpiresAt: null,
    });
    expect(notifyNew.body.secret).not.toBe(notifyOld);
    expect((await call(stack, 'GET', '/v1/webhooks/notify-secret')).body.secret).toBe(
      notifyNew.body.secret,
    );
    // Bad rotations are refused.
    for (const body of [{ graceSeconds: -1 }, { graceSeconds: 8 * 86_400 }, { grace: 1 }])
      expect((await call(stack, 'POST', `/v1/webhooks/${hookId}/rotate`, body)).status).toBe(400);
    expect(
      (await call(stack, 'POST', '/v1/webhooks/wh_0123456789abcdef0123/rotate', {})).status,
    ).toBe(404);
    expect((await call(stack, 'DELETE', `/v1/webhooks/${hookId}`)).status).toBe(204);
  }, 120_000);

  it('disables a webhook whose receiver answers 410 Gone, visibly, until it is enabled again', async () => {
    gone.add('/gone');
    const created = await call(stack, 'POST', '/v1/webhooks', {
      url: `http://127.0.0.1:${port}/gone`,
    });
    const hookId = created.body.id as string;
    const res = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Add notes. SCENARIO:create',
    });
    await waitForTask(stack, res.body.id);
    const view = await until('the webhook disabled', async () => {
      const hooks = (await call(stack, 'GET', '/v1/webhooks')).body.webhooks as any[];
      const hook = hooks.find((w) => w.id === hookId);
      return hook?.status === 'disabled' ? hook : undefined;
    });
    expect(view.disabledReason).toContain('410');
    expect(Date.parse(view.disabledAt)).toBeGreaterThan(0);
    // One try, not retried: the first event was refused, and nothing after it was sent.
    const tries = received.filter((r) => r.path === '/gone');
    expect(tries).toHaveLength(1);
    const log = (await call(stack, 'GET', `/v1/webhooks/${hookId}/deliveries`)).body.deliveries;
    expect(log.map((d: any) => `${d.event} ${d.outcome} ${d.statusCode}`)).toEqual([
      'task.queued gave_up 410',
    ]);

    // A later task sends nothing to it.
    const more = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Add notes. SCENARIO:create',
    });
    await waitForTask(stack, more.body.id);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(received.filter((r) => r.path === '/gone')).toHaveLength(1);

    // Enabled again, it gets the next task's events.
    gone.delete('/gone');
    const enabled = await call(stack, 'POST', `/v1/webhooks/${hookId}/enable`);
    expect(enabled.status).toBe(200);
    expect(enabled.body).toMatchObject({
      status: 'active',
      disabledAt: null,
      disabledReason: null,
    });
    const again = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Add notes. SCENARIO:create',
    });
    await waitForTask(stack, again.body.id);
    await until('deliveries after enabling', () => {
      const got = received.filter(
        (r) =>
          r.path === '/gone' && r.status === 204 && JSON.parse(r.body).taskId === again.body.id,
      );
      return got.length === 3 ? got : undefined;
    });
    expect((await call(stack, 'DELETE', `/v1/webhooks/${hookId}`)).status).toBe(204);
  }, 120_000);

  it.each([
    ['http://169.254.169.254/latest/meta-data', 'private_address'],
    ['http://10.0.0.1/hook', 'private_address'],
    ['http://[::1]:9/hook', 'private_address'],
    // A name that resolves to 127.0.0.1: the operator allowed the address, not the name.
    [`http://localhost:PORT/hook`, 'private_address'],
    ['http://127.0.0.1:1/hook', 'private_address'],
    ['ftp://example.com/hook', 'scheme_not_allowed'],
    ['https://user:pw@example.com/hook', 'credentials'],
  ])('refuses %s at registration (%s)', async (url, reason) => {
    const res = await call(stack, 'POST', '/v1/webhooks', {
      url: url.replace('PORT', String(port)),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(422);
    expect(res.body.error).toMatchObject({ code: 'webhook_url_refused', details: { reason } });
  });

  it("refuses a task's notify URL to a private address, and bad webhook requests", async () => {
    const res = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'x',
      notify: { url: 'http://10.0.0.1/notify' },
    });
    expect(res.status).toBe(422);
    expect(res.body.error.code).toBe('webhook_url_refused');
    const badEvent = await call(stack, 'POST', '/v1/webhooks', {
      url: `http://127.0.0.1:${port}/hook`,
      events: ['task.exploded'],
    });
    expect(badEvent.status).toBe(400);
    expect((await call(stack, 'DELETE', '/v1/webhooks/not-an-id')).status).toBe(400);
  });
});

function bySequence(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am! - bm! || as! - bs!;
}
