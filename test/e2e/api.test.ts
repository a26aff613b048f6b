import { startApi } from '@patchbay/api';
import { createRedis } from '@patchbay/queue';
import { createHash, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, call, freePort, lifecycleOf, startStack } from '../support/stack.js';

// No worker: tasks stay queued, which is what these tests of the HTTP surface need.
let stack: Stack;
const ACME = 'acme-key-0123456789abcdef';
const UMBRELLA = 'umbrella-key-0123456789abcdef';
const acme = { authorization: `Bearer ${ACME}` };
const umbrella = { authorization: `Bearer ${UMBRELLA}` };

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': 'hi\n' })) },
    env: {
      // One tenant's key is given hashed, as an operator may.
      PATCHBAY_API_KEYS: `acme:${ACME},umbrella:sha256:${createHash('sha256').update(UMBRELLA).digest('hex')}`,
      PATCHBAY_MAX_ACTIVE_TASKS: '3',
      PATCHBAY_BODY_LIMIT: '256k',
    },
  });
});

afterAll(async () => {
  await stack?.close();
});

const spec = () => ({ repo: { url: stack.git.url('app.git') }, prompt: 'Fix the bug.' });
const submit = (body: unknown, headers = acme) => call(stack, 'POST', '/v1/tasks', body, headers);
const listed = async (headers = acme) =>
  (await call(stack, 'GET', '/v1/tasks?limit=100', undefined, headers)).body.tasks as any[];

describe('the HTTP API', () => {
  it('requires a valid key on /v1 routes, but not on health', async () => {
    expect((await call(stack, 'GET', '/v1/tasks')).status).toBe(401);
    const bad = await call(stack, 'GET', '/v1/tasks', undefined, {
      authorization: 'Bearer nope-nope-nope-nope',
    });
    expect(bad.status).toBe(401);
    expect(bad.body.error.code).toBe('unauthorized');
    expect((await call(stack, 'GET', '/v1/tasks', undefined, umbrella)).status).toBe(200);
    expect((await call(stack, 'GET', '/healthz')).status).toBe(200);
    expect((await call(stack, 'GET', '/readyz')).body).toMatchObject({ status: 'ready' });
  });

  it('stores and queues a task, and serves it with defaults filled in', async () => {
    const res = await submit({
      ...spec(),
      environment: { verify: 'npm test', env: { CI: '1' }, secrets: { TOKEN: 'abc-secret-xyz' } },
    });
    expect(res.status).toBe(202);
    const task = res.body;
    expect(task).toMatchObject({
      status: 'queued',
      phase: null,
      repo: { url: stack.git.url('app.git'), ref: null },
      environment: {
        image: 'patchbay/sandbox:latest',
        verify: 'npm test',
        env: { CI: '1' },
        secretNames: ['TOKEN'],
        network: 'none',
      },
      model: { name: 'gpt-5-codex', reasoningEffort: null },
      limits: { timeoutSeconds: 300, maxTurns: 80 },
      baseCommit: null,
      result: null,
      error: null,
      origin: { kind: 'api' },
    });
    expect(JSON.stringify(task)).not.toContain('abc-secret-xyz');
    expect(task.tenant).toBeUndefined();
    expect(task.cancelRequested).toBeUndefined();
    const got = await call(stack, 'GET', `/v1/tasks/${task.id}`, undefined, acme);
    expect(got.body).toEqual(task);
    const events = await call(stack, 'GET', `/v1/tasks/${task.id}/events`, undefined, acme);
    expect(events.body.events).toMatchObject([{ seq: 1, type: 'status', status: 'queued' }]);
    expect(
      (await call(stack, 'GET', `/v1/tasks/${task.id}/patch`, undefined, acme)).body.error.code,
    ).toBe('patch_not_ready');
  });

  it('records where a task came from: a known client by its header, the API otherwise', async () => {
    const from = async (client?: string) => {
      const headers = { ...acme, ...(client === undefined ? {} : { 'patchbay-client': client }) };
      const res = await call(stack, 'POST', '/v1/tasks', spec(), headers);
      expect(res.status).toBe(202);
      const got = await call(stack, 'GET', `/v1/tasks/${res.body.id}`, undefined, acme);
      // Ended at once: the tenant's cap here is a few queued tasks.
      await call(stack, 'POST', `/v1/tasks/${res.body.id}/cancel`, undefined, acme);
      return got.body.origin;
    };
    expect(await from('page')).toEqual({ kind: 'page' });
    expect(await from('cli')).toEqual({ kind: 'cli' });
    expect(await from('mcp')).toEqual({ kind: 'mcp' });
    expect(await from('mention')).toEqual({ kind: 'api' });
    expect(await from()).toEqual({ kind: 'api' });
  });

  it("hides one tenant's tasks from another: 404 on every route, never listed", async () => {
    const { body: task } = await submit(spec());
    for (const [method, path] of [
      ['GET', `/v1/tasks/${task.id}`],
      ['GET', `/v1/tasks/${task.id}/events`],
      ['GET', `/v1/tasks/${task.id}/patch`],
      ['POST', `/v1/tasks/${task.id}/cancel`],
    ] as const) {
      const res = await call(stack, method, path, undefined, umbrella);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect((await listed(umbrella)).map((t) => t.id)).not.toContain(task.id);
    expect((await call(stack, 'GET', `/v1/tasks/${task.id}`, undefined, acme)).body.status).toBe(
      'queued',
    );
  });

  it('cancels a queued task, idempotently', async () => {
    const { body: task } = await submit(spec());
    const first = await call(stack, 'POST', `/v1/tasks/${task.id}/cancel`, undefined, acme);
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ status: 'cancelled', error: { code: 'cancelled' } });
    expect(first.body.finishedAt).not.toBeNull();
    const second = await call(stack, 'POST', `/v1/tasks/${task.id}/cancel`, undefined, acme);
    expect(second.body).toEqual(first.body);
    const events = (await call(stack, 'GET', `/v1/tasks/${task.id}/events`, undefined, acme)).body
      .events;
    expect(events.map((e: any) => e.status)).toEqual(['queued', 'cancelled']);
    // The API ended it through the lifecycle owner: one outbox event per status, once.
    expect(await lifecycleOf(stack, task.id)).toEqual(['task.queued', 'task.cancelled']);
  });

  it('lists newest first with a status filter and cursor pagination', async () => {
    const other = { authorization: `Bearer ${UMBRELLA}` };
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await submit(spec(), other)).body.id);
    await call(stack, 'POST', `/v1/tasks/${ids[0]}/cancel`, undefined, other);
    const page1 = await call(stack, 'GET', '/v1/tasks?limit=2', undefined, other);
    expect(page1.body.tasks.map((t: any) => t.id)).toEqual([ids[2], ids[1]]);
    const page2 = await call(
      stack,
      'GET',
      `/v1/tasks?limit=2&cursor=${page1.body.nextCursor}`,
      undefined,
      other,
    );
    expect(page2.body.tasks.map((t: any) => t.id)).toEqual([ids[0]]);
    expect(page2.body.nextCursor).toBeNull();
    const cancelled = await call(stack, 'GET', '/v1/tasks?status=cancelled', undefined, other);
    expect(cancelled.body.tasks.map((t: any) => t.id)).toEqual([ids[0]]);
    expect((await call(stack, 'GET', '/v1/tasks?cursor=garbage', undefined, other)).status).toBe(
      400,
    );
    expect((await call(stack, 'GET', '/v1/tasks?status=bogus', undefined, other)).status).toBe(400);
  });

  it('lists the runtimes the server offers, and refuses a task asking for another', async () => {
    const offered = await call(stack, 'GET', '/v1/runtimes', undefined, acme);
    expect(offered.status).toBe(200);
    expect(offered.body.runtimes.map((r: any) => [r.name, r.default])).toEqual([
      ['patchbay', true],
      ['codex', false],
    ]);
    expect((await call(stack, 'GET', '/v1/runtimes')).status).toBe(401);

    // An operator who offers only Codex: it is the default, and patchbay is refused.
    const only = await startApi({
      ...stack.config,
      api: { ...stack.config.api, port: await freePort() },
      tasks: { ...stack.config.tasks, runtimes: ['codex'] },
    });
    try {
      const listedThere = await call(only, 'GET', '/v1/runtimes', undefined, acme);
      expect(listedThere.body.runtimes).toEqual([
        { name: 'codex', summary: expect.stringContaining('Codex CLI'), default: true },
      ]);
      const before = (await listed()).length;
      const refused = await call(
        only,
        'POST',
        '/v1/tasks',
        { ...spec(), agent: { runtime: 'patchbay' } },
        acme,
      );
      expect(refused.status).toBe(422);
      expect(refused.body.error).toMatchObject({
        code: 'policy_refused',
        details: { field: 'agent.runtime', offered: ['codex'] },
      });
      expect((await listed()).length).toBe(before);
      const unnamed = await call(only, 'POST', '/v1/tasks', spec(), acme);
      expect(unnamed.status).toBe(202);
      expect(unnamed.body.agent).toEqual({ runtime: 'codex' });
      await call(only, 'POST', `/v1/tasks/${unnamed.body.id}/cancel`, undefined, acme);
    } finally {
      await only.close();
    }
  });

  it('answers bad input with the documented 4xx and stores nothing', async () => {
    const before = (await listed()).length;
    const cases: [unknown, number, string][] = [
      ['{not json', 400, 'validation_error'],
      [{}, 400, 'validation_error'],
      [{ repo: { url: stack.git.url('app.git') } }, 400, 'validation_error'],
      [{ ...spec(), prompt: '   ' }, 400, 'validation_error'],
      [{ ...spec(), unknown: true }, 400, 'validation_error'],
      [{ ...spec(), limits: { maxTurns: 0 } }, 400, 'validation_error'],
      [{ ...spec(), environment: { env: { 'BAD NAME': 'x' } } }, 400, 'validation_error'],
      [{ ...spec(), prompt: 'x'.repeat(70 * 1024) }, 400, 'validation_error'],
      [{ ...spec(), prompt: 'x'.repeat(300 * 1024) }, 413, 'payload_too_large'],
      // Far past the limit: the client still reads the 413, not a reset connection.
      [{ ...spec(), prompt: 'x'.repeat(5 * 1024 * 1024) }, 413, 'payload_too_large'],
      [{ ...spec(), environment: { network: 'on' } }, 422, 'policy_refused'],
      [{ ...spec(), limits: { timeoutSeconds: 3600 } }, 422, 'policy_refused'],
      [{ repo: { url: 'file:///etc/passwd' }, prompt: 'x' }, 422, 'repo_url_refused'],
      [{ repo: { url: 'ext::sh -c touch% /tmp/pwned' }, prompt: 'x' }, 422, 'repo_url_refused'],
      [
        { repo: { url: 'https://evil.example.com/repo.git' }, prompt: 'x' },
        422,
        'repo_url_refused',
      ],
      [
        { repo: { url: 'http://169.254.169.254/latest/meta-data' }, prompt: 'x' },
        422,
        'repo_url_refused',
      ],
      [
        { repo: { url: `http://user:pass@127.0.0.1:${stack.git.port}/app.git` }, prompt: 'x' },
        422,
        'repo_url_refused',
      ],
      [{ repo: { url: '-uhttps://github.com/x/y' }, prompt: 'x' }, 422, 'repo_url_refused'],
    ];
    for (const [body, status, code] of cases) {
      const res = await submit(body);
      expect(res.status, JSON.stringify(body).slice(0, 120)).toBe(status);
      expect(res.body.error.code, JSON.stringify(res.body)).toBe(code);
      expect(res.body.error.message).toBeTruthy();
    }
    const form = await call(stack, 'POST', '/v1/tasks', 'a=b', {
      ...acme,
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect(form.status).toBe(415);
    for (const path of [
      '/v1/tasks/not-a-uuid',
      '/v1/tasks/..%2F..%2Fetc%2Fpasswd',
      '/v1/nothing',
    ]) {
      const res = await call(stack, 'GET', path, undefined, acme);
      expect(res.status, path).toBe(404);
      expect(res.body.error.code).toBe('not_found');
    }
    expect((await call(stack, 'GET', `/v1/tasks/${'a'.repeat(300)}`, undefined, acme)).status).toBe(
      414,
    );
    expect((await listed()).length).toBe(before);
  });

  it('caps queued plus running tasks per tenant with 429', async () => {
    const fresh = await startStack({
      worker: false,
      repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
      env: { PATCHBAY_MAX_ACTIVE_TASKS: '2' },
    });
    try {
      const body = { repo: { url: fresh.git.url('app.git') }, prompt: 'x' };
      expect((await call(fresh, 'POST', '/v1/tasks', body)).status).toBe(202);
      const second = await call(fresh, 'POST', '/v1/tasks', body);
      expect(second.status).toBe(202);
      const third = await call(fresh, 'POST', '/v1/tasks', body);
      expect(third.status).toBe(429);
      expect(third.body.error.code).toBe('rate_limited');
      await call(fresh, 'POST', `/v1/tasks/${second.body.id}/cancel`);
      expect((await call(fresh, 'POST', '/v1/tasks', body)).status).toBe(202);
    } finally {
      await fresh.close();
    }
  });

  it('starts one task for one Idempotency-Key, however many times and at once it is sent', async () => {
    const fresh = await startStack({
      worker: false,
      repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
      env: {
        PATCHBAY_API_KEYS: `acme:${ACME},umbrella:${UMBRELLA}`,
        PATCHBAY_MAX_ACTIVE_TASKS: '100',
      },
    });
    try {
      const body = {
        repo: { url: fresh.git.url('app.git') },
        prompt: 'x',
        limits: { maxTurns: 5 },
      };
      const key = { ...acme, 'idempotency-key': `retry-${randomUUID()}` };
      const answers = await Promise.all(
        Array.from({ length: 20 }, () => call(fresh, 'POST', '/v1/tasks', body, key)),
      );
      expect(answers.map((a) => a.status).sort()).toEqual([...Array(19).fill(200), 202]);
      expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
      const [first] = answers;
      expect(
        answers.every((a) => a.headers.get('location') === `/v1/tasks/${first!.body.id}`),
      ).toBe(true);
      const tasks = (await call(fresh, 'GET', '/v1/tasks?limit=100', undefined, acme)).body.tasks;
      expect(tasks).toHaveLength(1);
      // The same body with its keys in another order is the same request.
      const reordered = { limits: { maxTurns: 5 }, prompt: 'x', repo: body.repo };
      expect((await call(fresh, 'POST', '/v1/tasks', reordered, key)).body.id).toBe(first!.body.id);
      // Another body under the key is refused, and nothing is stored.
      const other = await call(fresh, 'POST', '/v1/tasks', { ...body, prompt: 'y' }, key);
      expect(other.status).toBe(422);
      expect(other.body.error).toMatchObject({
        code: 'idempotency_key_reused',
        details: { taskId: first!.body.id },
      });
      // Keys belong to a tenant; a malformed key is a 400.
      const theirs = await call(fresh, 'POST', '/v1/tasks', body, {
        ...umbrella,
        'idempotency-key': key['idempotency-key'],
      });
      expect(theirs.status).toBe(202);
      expect(theirs.body.id).not.toBe(first!.body.id);
      const bad = await call(fresh, 'POST', '/v1/tasks', body, {
        ...acme,
        'idempotency-key': 'a b',
      });
      expect(bad.status).toBe(400);
      expect(
        (await call(fresh, 'GET', '/v1/tasks?limit=100', undefined, acme)).body.tasks,
      ).toHaveLength(1);
    } finally {
      await fresh.close();
    }
  });

  it('limits requests per tenant and minute across API instances, storing nothing refused', async () => {
    const fresh = await startStack({
      worker: false,
      repos: { 'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })) },
      env: {
        PATCHBAY_API_KEYS: `acme:${ACME},umbrella:${UMBRELLA}`,
        PATCHBAY_RATE_LIMIT_PER_MINUTE: '4',
      },
    });
    const other = await startApi({
      ...fresh.config,
      api: { ...fresh.config.api, port: await freePort() },
    });
    const redis = createRedis({ url: fresh.config.redis.url });
    try {
      const body = { repo: { url: fresh.git.url('app.git') }, prompt: 'x' };
      const created = await call(fresh, 'POST', '/v1/tasks', body, acme);
      expect(created.status).toBe(202);
      const read = await call(other, 'GET', `/v1/tasks/${created.body.id}`, undefined, acme);
      expect(read.status).toBe(200);
      expect(read.headers.get('x-ratelimit-limit')).toBe('4');
      expect(read.headers.get('x-ratelimit-remaining')).toBe('2');
      expect((await call(fresh, 'GET', '/v1/tasks', undefined, acme)).status).toBe(200);
      expect((await call(other, 'GET', '/v1/tasks', undefined, acme)).status).toBe(200);

      // The fifth request of the minute, whichever instance and route it reaches.
      const refused = [
        await call(fresh, 'POST', '/v1/tasks', body, acme),
        await call(other, 'POST', '/v1/tasks', body, acme),
        await call(other, 'GET', `/v1/tasks/${created.body.id}`, undefined, acme),
        await call(fresh, 'GET', `/v1/tasks/${randomUUID()}`, undefined, acme),
      ];
      for (const res of refused) {
        expect(res.status).toBe(429);
        expect(res.body.error.code).toBe('rate_limited');
        expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
        expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      }
      const prefix = fresh.config.redis.prefix;
      expect(await redis.zcard(`${prefix}:tenant:acme:tasks`)).toBe(1);
      // Another tenant has a minute of its own.
      const theirs = await call(other, 'POST', '/v1/tasks', body, umbrella);
      expect(theirs.status).toBe(202);
    } finally {
      redis.disconnect();
      await other.close();
      await fresh.close();
    }
  });

  it('serves the OpenAPI document generated from the schemas', async () => {
    const doc = await call(stack, 'GET', '/docs/json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/v1/tasks',
        '/v1/tasks/{id}',
        '/v1/tasks/{id}/events',
        '/v1/tasks/{id}/patch',
        '/v1/tasks/{id}/cancel',
        '/v1/tasks/{id}/messages',
        '/v1/tasks/{id}/turns/{n}/patch',
        '/v1/tasks/{id}/attempts',
        '/v1/tasks/{id}/attempts/{n}/patch',
        '/v1/tasks/{id}/attempts/{n}/events',
        '/v1/tasks/{id}/attempts/{n}/choose',
      ]),
    );
    const spec = doc.body.paths['/v1/tasks'].post.requestBody.content['application/json'].schema;
    expect(spec.properties.attempts).toMatchObject({ type: 'integer', minimum: 1, maximum: 8 });
    expect(spec.properties.models.type).toBe('array');
    const followUp =
      doc.body.paths['/v1/tasks/{id}/messages'].post.requestBody.content['application/json'].schema;
    expect(followUp.required).toEqual(['prompt']);
    const view =
      doc.body.paths['/v1/tasks/{id}'].get.responses['200'].content['application/json'].schema;
    expect(Object.keys(view.properties)).toEqual(expect.arrayContaining(['turn', 'turns']));
    expect(Object.keys(view.properties.turns.items.properties)).toEqual(
      expect.arrayContaining(['n', 'prompt', 'status', 'usage', 'error', 'result', 'warm']),
    );
    const body = doc.body.paths['/v1/tasks'].post.requestBody.content['application/json'].schema;
    expect(body.required).toEqual(expect.arrayContaining(['repo', 'prompt']));
  });
});
