import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { verifySignature } from '@patchbay/webhooks';
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
  body: string;
}

let stack: Stack;
let receiver: Server;
let port: number;
const received: Received[] = [];
/** Requests answered 503 before the receiver comes up. */
let downFor = 0;

const CREATE = `*** Begin Patch
*** Add File: notes.txt
+line one
*** End Patch`;

beforeAll(async () => {
  receiver = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const status = downFor > 0 ? 503 : 204;
      if (downFor > 0) downFor--;
      received.push({
        path: req.url ?? '',
        status,
        event: String(req.headers['patchbay-event']),
        delivery: String(req.headers['patchbay-delivery']),
        signature: String(req.headers['patchbay-signature']),
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
        expect(verifySignature(key, r.body, r.signature)).toBe(true);
        expect(verifySignature(key, `${r.body} `, r.signature)).toBe(false);
        expect(r.delivery).toBe(JSON.parse(r.body).id);
      }
      // What was refused while the receiver was down came again with the same delivery id.
      const refused = received.filter((r) => r.path === path && r.status === 503);
      for (const r of refused) expect(ok.map((o) => o.delivery)).toContain(r.delivery);
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
