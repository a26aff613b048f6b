import { createRedis } from '@patchbay/queue';
import fc from 'fast-check';
import { Buffer } from 'node:buffer';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, call, startStack } from '../support/stack.js';

/**
 * Property-based fuzzing of the whole HTTP surface. `PATCHBAY_FUZZ_RUNS` requests are generated
 * (CI default 1,500; the published figure uses 10,000) and each must answer below 500 with the
 * error shape of the API, while no rejected request changes what Redis holds.
 */
const RUNS = Number(process.env.PATCHBAY_FUZZ_RUNS ?? 1500);
const SEED =
  process.env.PATCHBAY_FUZZ_SEED === undefined
    ? {}
    : { seed: Number(process.env.PATCHBAY_FUZZ_SEED) };

const ACME = 'acme-fuzz-key-0123456789abcdef';
const UMBRELLA = 'umbrella-fuzz-key-0123456789abcdef';
const acme = { authorization: `Bearer ${ACME}` };
const umbrella = { authorization: `Bearer ${UMBRELLA}` };

let stack: Stack;
/** Ids of the fuzzed tenant's own tasks, and of the other tenant's. */
const ownIds: string[] = [];
const otherIds: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    worker: false,
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': 'hi\n' })) },
    env: {
      PATCHBAY_API_KEYS: `acme:${ACME},umbrella:${UMBRELLA}`,
      // Each tenant fills its quota before the fuzzing starts, so that even a generated spec that
      // is valid is refused (429) after going through every check: nothing a fuzzed request does
      // may change stored state, and a change is a bug.
      PATCHBAY_MAX_ACTIVE_TASKS: '2',
      PATCHBAY_BODY_LIMIT: '64k',
    },
  });
  for (const [headers, ids] of [
    [acme, ownIds],
    [umbrella, otherIds],
  ] as const) {
    for (let i = 0; i < 2; i++) {
      const res = await call(stack, 'POST', '/v1/tasks', validSpec(), headers);
      expect(res.status).toBe(202);
      ids.push(res.body.id);
    }
  }
});

afterAll(async () => {
  await stack?.close();
});

const validSpec = (): Record<string, unknown> => ({
  repo: { url: stack.git.url('app.git'), ref: 'main' },
  prompt: 'Fix the bug.',
  environment: { setup: 'true', env: { CI: '1' }, network: 'none' },
  model: { name: 'gpt-5-codex', reasoningEffort: 'low' },
  limits: { timeoutSeconds: 60, maxTurns: 5, maxTokens: 10_000 },
});

/** Every key under the stack's prefix with a dump of its value. */
async function snapshot(): Promise<Map<string, string>> {
  const redis = createRedis({ url: stack.config.redis.url });
  try {
    const out = new Map<string, string>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(
        cursor,
        'MATCH',
        `${stack.config.redis.prefix}:*`,
        'COUNT',
        1000,
      );
      cursor = next;
      for (const key of keys) {
        // Rate-limit counters count every request, refused ones too: that is their job.
        if (key.startsWith(`${stack.config.redis.prefix}:ratelimit:`)) continue;
        const dump = await redis.dumpBuffer(key);
        out.set(key, dump === null ? '' : dump.toString('base64'));
      }
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

/** Percent-encodes any string, lone surrogates included (encodeURIComponent throws on those). */
const pct = (s: string): string =>
  [...Buffer.from(s, 'utf8')]
    .map((b) =>
      /[A-Za-z0-9._~-]/.test(String.fromCharCode(b))
        ? String.fromCharCode(b)
        : `%${b.toString(16).padStart(2, '0')}`,
    )
    .join('');

// ---- generators ----------------------------------------------------------------------------

/** Built once the tasks exist, since ids are drawn from them. */
function requests() {
  const hugeString = fc.integer({ min: 10_000, max: 200_000 }).map((n) => 'A'.repeat(n));
  const weirdString = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }),
    fc.constantFrom(
      '',
      ' ',
      '\0',
      '\u202e',
      '\ud800',
      '../../etc/passwd',
      '%2e%2e%2f',
      '__proto__',
      'constructor',
      '{}',
      'null',
      'NaN',
      '-1',
      '1e309',
      '${jndi:ldap://127.0.0.1/x}',
      '$(id)',
      '`id`',
      'a'.repeat(300),
    ),
  );
  const anyValue: fc.Arbitrary<unknown> = fc.oneof(
    fc.anything({ maxDepth: 3 }),
    weirdString,
    fc.integer(),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.array(fc.anything({ maxDepth: 2 }), { maxLength: 5 }),
  );

  /** A valid spec with one thing changed: a field set to a wrong value, removed, or added. */
  const mutatedSpec = fc
    .tuple(
      fc.constantFrom(
        ['repo'],
        ['repo', 'url'],
        ['repo', 'ref'],
        ['prompt'],
        ['environment'],
        ['environment', 'image'],
        ['environment', 'setup'],
        ['environment', 'verify'],
        ['environment', 'env'],
        ['environment', 'secrets'],
        ['environment', 'network'],
        ['model'],
        ['model', 'name'],
        ['model', 'reasoningEffort'],
        ['limits'],
        ['limits', 'timeoutSeconds'],
        ['limits', 'maxTurns'],
        ['limits', 'maxTokens'],
        ['extra'],
        ['repo', 'extra'],
        ['__proto__'],
        ['environment', 'env', 'BAD NAME'],
        ['environment', 'secrets', '__proto__'],
      ),
      fc.oneof(
        { weight: 1, arbitrary: fc.constant(undefined) },
        { weight: 4, arbitrary: anyValue },
        { weight: 1, arbitrary: hugeString },
      ),
    )
    .map(([path, value]) => {
      const spec = validSpec();
      let node: Record<string, unknown> = spec;
      for (const key of path.slice(0, -1)) {
        const child = node[key];
        node =
          typeof child === 'object' && child !== null ? (child as Record<string, unknown>) : {};
      }
      const last = path.at(-1)!;
      if (value === undefined) delete node[last];
      else Object.defineProperty(node, last, { value, enumerable: true, writable: true });
      return JSON.stringify(spec);
    });

  const deepNesting = fc
    .tuple(fc.integer({ min: 100, max: 20_000 }), fc.constantFrom('[', '{"a":'))
    .map(([depth, open]) => open.repeat(depth) + '1' + (open === '[' ? ']' : '}').repeat(depth));

  /** Bytes that are not UTF-8 (lone continuation bytes, overlongs, surrogates) inside JSON. */
  const badUtf8 = fc
    .tuple(
      fc.constantFrom('prompt', 'repo', 'environment'),
      fc.uint8Array({ minLength: 1, maxLength: 64 }),
      fc.constantFrom(
        [0xff],
        [0xc0, 0xaf],
        [0xed, 0xa0, 0x80],
        [0x80],
        [0xf8, 0x88, 0x80, 0x80, 0x80],
        [0xfe, 0xff],
      ),
    )
    .map(([field, noise, bad]) =>
      Buffer.concat([
        Buffer.from(`{"${field}":"`),
        Buffer.from(bad),
        Buffer.from(noise),
        Buffer.from(`","repo":{"url":"${stack.git.url('app.git')}"}}`),
      ]),
    );

  const body: fc.Arbitrary<string | Buffer | undefined> = fc.oneof(
    { weight: 6, arbitrary: mutatedSpec },
    { weight: 2, arbitrary: anyValue.map((v) => JSON.stringify(v) ?? 'undefined') },
    { weight: 1, arbitrary: deepNesting },
    { weight: 1, arbitrary: badUtf8 },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b)) },
    { weight: 1, arbitrary: weirdString },
    // Past the 64 KiB body limit.
    {
      weight: 1,
      arbitrary: fc
        .integer({ min: 65 * 1024, max: 300 * 1024 })
        .map((n) => `{"prompt":"${'x'.repeat(n)}"}`),
    },
    { weight: 1, arbitrary: fc.constant(undefined) },
  );

  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant('application/json') },
    {
      weight: 4,
      arbitrary: fc.constantFrom(
        undefined,
        '',
        'application/json; charset=utf-16',
        'application/json; charset=latin1',
        'application/json;;;',
        'APPLICATION/JSON',
        'text/plain',
        'text/event-stream',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=xyz',
        'application/octet-stream',
        'application/xml',
        '*/*',
        'application/json\u0000',
        'a'.repeat(2000),
      ),
    },
    { weight: 1, arbitrary: weirdString },
  );

  /** Ids: real ones of either tenant, tampered real ones, and path tricks. */
  const taskId = fc.oneof(
    fc
      .constantFrom(...['own', 'other'])
      .chain((who) => fc.constantFrom(...(who === 'own' ? ownIds : otherIds))),
    fc
      .tuple(
        fc.constantFrom(...ownIds),
        fc.constantFrom(
          (id: string) => id.toUpperCase(),
          (id: string) => `${id}:secrets`,
          (id: string) => `${id}%3Asecrets`,
          (id: string) => `${id}%00`,
          (id: string) => `${id}/`,
          (id: string) => `${id}/..`,
          (id: string) => ` ${id}`,
          (id: string) => `${id}%20`,
          (id: string) => id.slice(1),
          (id: string) => `../${id}`,
          (id: string) => `%2e%2e%2f${id}`,
          (id: string) => `${id}?id=${id}`,
        ),
      )
      .map(([id, f]) => f(id)),
    fc.uuid(),
    fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '..%2f..%2fetc%2fpasswd',
      '%00',
      '%ff%fe',
      '%',
      '%zz',
      '*',
      'a'.repeat(199),
      'a'.repeat(201),
      'a'.repeat(5000),
      '%E2%80%AE',
      '\u00e9',
      'null',
      'undefined',
      '__proto__',
      'constructor',
    ),
    weirdString.map((s) => pct(s)),
  );

  const query = fc.oneof(
    { weight: 3, arbitrary: fc.constant('') },
    {
      weight: 2,
      arbitrary: fc.constantFrom(
        '?limit=-1',
        '?limit=0',
        '?limit=1e9',
        '?limit=abc',
        '?limit=1&limit=2',
        '?after=-5',
        '?after=1.5',
        '?after=99999999999999999999',
        '?status=nope',
        '?status=queued&status=failed',
        '?status[]=queued',
        `?cursor=${'c'.repeat(600)}`,
        '?cursor=%ff',
        '?cursor=..%2f',
        '?cursor=1:2:3',
        '?__proto__[x]=1',
        '?constructor=1',
        '?unknown=1',
        '?&&&=&=',
        '?%',
      ),
    },
    fc
      .dictionary(
        fc.constantFrom('limit', 'after', 'status', 'cursor', 'keepOpen', 'x'),
        fc.oneof(weirdString, fc.integer().map(String)),
        { maxKeys: 3 },
      )
      .map((q) => '?' + new URLSearchParams(q).toString()),
  );

  const route = fc.oneof(
    { weight: 3, arbitrary: fc.constant({ method: 'POST', url: '/v1/tasks' }) },
    { weight: 1, arbitrary: query.map((q) => ({ method: 'GET', url: `/v1/tasks${q}` })) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(
          taskId,
          fc.constantFrom(
            '',
            '/events',
            '/patch',
            '/cancel',
            '/messages',
            '/turns/1/patch',
            '/turns/0/patch',
            '/turns/x/patch',
            `/turns/${'9'.repeat(30)}/patch`,
            '/attempts',
            '/attempts?turn=0',
            '/attempts/1/patch',
            '/attempts/1/events',
            '/attempts/1/choose',
            '/attempts/-1/choose',
            '/attempts/x/events',
            '/deliver',
            '/deliver?wait=0',
            '/deliver?wait=61',
            '/turns//patch',
            '/',
            '/events/',
            '/nope',
            '/../..',
          ),
          query,
          fc.constantFrom(
            'GET',
            'POST',
            'GET',
            'POST',
            'PUT',
            'DELETE',
            'PATCH',
            'HEAD',
            'OPTIONS',
          ),
        )
        .map(([id, suffix, q, method]) => ({ method, url: `/v1/tasks/${id}${suffix}${q}` })),
    },
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.constantFrom(
            '/',
            '//v1/tasks',
            '/v1//tasks',
            '/V1/TASKS',
            '/v1/tasks/',
            '/v1/tasks/%2F',
            '/v1/%2e%2e/healthz',
            '/healthz',
            '/readyz',
            '/docs',
            '/docs/json',
            '/v2/tasks',
            '/v1/tasks?' + 'q'.repeat(10_000),
            '/%',
            '/%00',
            '/\u00e9',
          ),
          fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE'),
        )
        .map(([url, method]) => ({ method, url })),
    },
    {
      weight: 1,
      arbitrary: weirdString.map((s) => ({ method: 'GET', url: `/${pct(s)}` })),
    },
    // Webhooks by id (never a registration: a valid one would resolve its host over DNS).
    {
      weight: 1,
      arbitrary: fc
        .tuple(
          fc.oneof(
            taskId,
            fc.constantFrom(
              'wh_0123456789abcdef0123',
              'whc_0123456789abcdef',
              'wh_',
              'notify-secret',
            ),
          ),
          fc.constantFrom('', '/deliveries', '/deliveries?limit=0', '/deliveries?limit=500'),
          fc.constantFrom('GET', 'DELETE', 'PUT'),
        )
        .filter(
          ([id, suffix, method]) => !(id === 'notify-secret' && suffix === '' && method === 'GET'),
        )
        .map(([id, suffix, method]) => ({ method, url: `/v1/webhooks/${id}${suffix}` })),
    },
  );

  const authorization = fc.oneof(
    { weight: 8, arbitrary: fc.constant(acme.authorization) },
    {
      weight: 3,
      arbitrary: fc.constantFrom(
        undefined,
        '',
        'Bearer',
        'Bearer ',
        `bearer ${ACME}`,
        `Bearer  ${ACME}  `,
        `Bearer ${ACME}x`,
        `Bearer ${ACME.slice(0, -1)}`,
        `Basic ${Buffer.from(`acme:${ACME}`).toString('base64')}`,
        `Bearer ${'k'.repeat(600)}`,
        `Bearer ${ACME}, Bearer ${UMBRELLA}`,
        `Bearer sha256:${'0'.repeat(64)}`,
        'Bearer \u00e9\u00e9',
        'Bearer\t' + ACME,
      ),
    },
    { weight: 1, arbitrary: weirdString.map((s) => `Bearer ${s}`) },
  );

  const lastEventId = fc.oneof(
    { weight: 6, arbitrary: fc.constant(undefined) },
    fc.constantFrom(
      '',
      '-1',
      '0',
      '1',
      'abc',
      '1.5',
      '1e400',
      '99999999999999999999',
      'NaN',
      ' 2 ',
    ),
    weirdString,
  );

  /** Accept headers; asking for SSE on a real task would stream until it ends, so never for those. */
  const accept = fc.oneof(
    { weight: 5, arbitrary: fc.constant(undefined) },
    fc.constantFrom(
      'application/json',
      '*/*',
      'text/html',
      'application/xml',
      'image/png',
      ';;;',
      'a'.repeat(4000),
    ),
    weirdString,
  );

  const extraHeaders = fc.dictionary(
    fc.oneof(
      fc.constantFrom(
        'x-forwarded-for',
        'x-http-method-override',
        'origin',
        'cookie',
        'range',
        'if-none-match',
        'transfer-encoding',
        'expect',
        'content-encoding',
      ),
      fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
    ),
    fc.oneof(
      fc.stringMatching(/^[ -~]{0,100}$/),
      fc.constant('x'.repeat(8000)),
      fc.constantFrom('gzip', 'chunked', '100-continue', 'bytes=0-1'),
    ),
    { maxKeys: 4 },
  );

  const request = fc
    .record({
      route,
      body,
      contentType,
      authorization,
      lastEventId,
      accept,
      sse: fc.boolean(),
      extra: extraHeaders,
    })
    .map((r) => {
      const headers: Record<string, string> = { ...r.extra };
      // Node refuses header values with control characters or non-Latin-1; those never reach a
      // server over HTTP, so they are kept out of the injected ones (raw sockets test them below).
      const put = (name: string, value: string | undefined) => {
        if (value !== undefined && /^[\t\x20-\x7e\x80-\xff]*$/.test(value)) headers[name] = value;
      };
      put('authorization', r.authorization);
      put('content-type', r.contentType);
      put('last-event-id', r.lastEventId);
      const realTask = [...ownIds, ...otherIds].some(
        (id) =>
          r.route.url.includes(`/${id}/events`) || r.route.url.includes(`/${id}/attempts/1/events`),
      );
      put('accept', r.sse && !realTask ? 'text/event-stream' : r.accept);
      delete headers['content-length'];
      // Cancelling one's own task, or answering it, is a valid request that changes state: kept
      // out of the run.
      const method =
        r.route.method === 'POST' &&
        ownIds.some(
          (id) =>
            r.route.url.startsWith(`/v1/tasks/${id}/cancel`) ||
            r.route.url.startsWith(`/v1/tasks/${id}/messages`) ||
            r.route.url.startsWith(`/v1/tasks/${id}/attempts/1/choose`),
        )
          ? 'GET'
          : r.route.method;
      return { method, url: r.route.url, headers, body: r.body };
    });

  return request;
}

// ---- checks ----------------------------------------------------------------------------------

const counts = { requests: 0, byStatus: new Map<number, number>() };

function checkErrorShape(status: number, payload: string, what: string): void {
  if (status < 400) return;
  let parsed: any;
  try {
    parsed = JSON.parse(payload);
  } catch {
    throw new Error(`${what}: ${status} with a body that is not JSON: ${payload.slice(0, 200)}`);
  }
  if (
    typeof parsed?.error?.code !== 'string' ||
    !/^[a-z_]+$/.test(parsed.error.code) ||
    typeof parsed.error.message !== 'string'
  ) {
    throw new Error(`${what}: ${status} without the error shape: ${payload.slice(0, 200)}`);
  }
}

describe('API fuzzing', () => {
  it(`answers ${RUNS} generated requests without a 5xx, always with the error shape, and changes nothing`, async () => {
    const before = await snapshot();
    await fc.assert(
      fc.asyncProperty(requests(), async (req) => {
        const res = await stack.api.app.inject({
          method: req.method,
          url: req.url,
          headers: req.headers,
          ...(req.body === undefined || req.method === 'GET' || req.method === 'HEAD'
            ? {}
            : { payload: req.body }),
        });
        counts.requests++;
        counts.byStatus.set(res.statusCode, (counts.byStatus.get(res.statusCode) ?? 0) + 1);
        const what = `${req.method} ${req.url.slice(0, 120)}`;
        if (res.statusCode >= 500) {
          throw new Error(`${what}: ${res.statusCode} ${res.payload.slice(0, 300)}`);
        }
        if (req.method !== 'HEAD') checkErrorShape(res.statusCode, res.payload, what);
        // A request for another tenant's task is told it does not exist, whatever it asks.
        if (otherIds.some((id) => req.url.startsWith(`/v1/tasks/${id}`)) && res.statusCode < 300) {
          throw new Error(`${what}: ${res.statusCode} for another tenant's task`);
        }
      }),
      { numRuns: RUNS, ...SEED },
    );
    const after = await snapshot();
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [key, value] of before) expect(after.get(key), key).toBe(value);
    // The fuzzing reached past validation: policy, quota and not-found answers all occurred.
    expect(counts.requests).toBe(RUNS);
    for (const status of [400, 401, 404, 413, 429]) {
      expect(counts.byStatus.get(status) ?? 0, `answers ${status}`).toBeGreaterThan(0);
    }
    console.log(
      `api-fuzz: ${counts.requests} requests, by status ${JSON.stringify(Object.fromEntries([...counts.byStatus].sort((a, b) => a[0] - b[0])))}`,
    );
  }, 600_000);

  it('survives header abuse and malformed HTTP over a real socket, then still serves', async () => {
    const { hostname: host, port } = new URL(stack.url);
    const raw = (text: string | Buffer): Promise<string> =>
      new Promise((resolve) => {
        const socket = connect(Number(port), host);
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('error', (e) => {
          if (process.env.DEBUG_RAW) console.log('ERR', e);
          resolve(Buffer.concat(chunks).toString('latin1'));
        });
        socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
        socket.setTimeout(2000, () => socket.destroy());
        // Write without half-closing: a server may drop a socket whose client already ended.
        socket.write(text);
      });
    const auth = `Authorization: Bearer ${ACME}\r\n`;
    const statuses: number[] = [];
    const cases: (string | Buffer)[] = [
      // Headers past Node's 16 KiB limit: 431 from the HTTP parser.
      `GET /v1/tasks HTTP/1.1\r\nHost: x\r\n${auth}X-Big: ${'a'.repeat(70_000)}\r\n\r\n`,
      `GET /v1/tasks HTTP/1.1\r\nHost: x\r\n${auth}${Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`,
      // Two Authorization headers, one of them good.
      `GET /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}Authorization: Bearer nope\r\n\r\n`,
      // Bytes that are not Latin-1 or UTF-8 in header values.
      Buffer.concat([
        Buffer.from(
          `GET /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer `,
        ),
        Buffer.from([0xff, 0xfe, 0x00, 0x80]),
        Buffer.from('\r\n\r\n'),
      ]),
      Buffer.concat([
        Buffer.from(
          `GET /v1/tasks/x/events HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}Last-Event-ID: `,
        ),
        Buffer.from([0xc0, 0xaf, 0xed, 0xa0, 0x80]),
        Buffer.from('\r\n\r\n'),
      ]),
      // Broken request lines and framing.
      'GARBAGE\r\n\r\n',
      `GET /v1/tasks HTTP/9.9\r\n\r\n`,
      `POST /v1/tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 10\r\nContent-Length: 20\r\n\r\n{}`,
      `POST /v1/tasks HTTP/1.1\r\nHost: x\r\n${auth}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\nzz\r\n`,
      `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}Content-Type: application/json\r\nContent-Length: 4\r\n\r\n{"a"`,
      `POST /v1/tasks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}`,
      `GET /v1/tasks/${'%'.repeat(3000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n${auth}\r\n`,
    ];
    for (const text of cases) {
      const answer = await raw(text);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 0);
      statuses.push(status);
      if (process.env.DEBUG_RAW) console.log(status, answer.slice(0, 300));
      // No answer at all (the parser closed the socket) is acceptable; a 5xx is not.
      expect(status, answer.slice(0, 200)).toBeLessThan(500);
      if (status >= 400) {
        const payload = answer.slice(answer.indexOf('\r\n\r\n') + 4);
        checkErrorShape(status, payload, `raw request ${String(text).slice(0, 40)}`);
      }
    }
    // Each was answered (none left hanging), the oversized ones with 431.
    expect(statuses.slice(0, 2)).toEqual([431, 431]);
    expect(
      statuses.filter((s) => s < 200),
      JSON.stringify(statuses),
    ).toEqual([]);
    // Still up, still correct.
    expect((await call(stack, 'GET', '/healthz')).status).toBe(200);
    const list = await call(stack, 'GET', '/v1/tasks', undefined, acme);
    expect(list.status).toBe(200);
    expect(list.body.tasks.map((t: { id: string }) => t.id).sort()).toEqual([...ownIds].sort());
  });
});
