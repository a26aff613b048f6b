import { startApi, type ApiServer } from '@patchbay/api';
import { loadConfig } from '@patchbay/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, freePort } from '../support/stack.js';

let api: ApiServer;

beforeAll(async () => {
  // A Redis URL where nothing listens: every store call fails, as during a Redis restart.
  const redisPort = await freePort();
  api = await startApi(
    loadConfig({
      ...process.env,
      PORT: String(await freePort()),
      LOG_LEVEL: 'silent',
      REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      PATCHBAY_REPO_HOSTS: 'http://127.0.0.1:9',
    }),
  );
});

afterAll(async () => {
  await api?.close();
});

describe('the API while Redis is unreachable', () => {
  it('answers 503 promptly, not 500 and not after a long wait', async () => {
    const started = Date.now();
    const submitted = await call(api, 'POST', '/v1/tasks', {
      repo: { url: 'http://127.0.0.1:9/a.git' },
      prompt: 'x',
    });
    expect(submitted.status).toBe(503);
    expect(submitted.body.error.code).toBe('unavailable');
    expect(submitted.headers.get('retry-after')).toBe('1');
    const listed = await call(api, 'GET', '/v1/tasks');
    expect(listed.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(5000);
    const ready = await call(api, 'GET', '/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.checks.redis).toBe('unavailable');
    expect((await call(api, 'GET', '/healthz')).status).toBe(200);
  });
});
