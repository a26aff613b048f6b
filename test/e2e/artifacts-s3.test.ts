import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type S3TestServer, startS3Server } from '@patchbay/store/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The artifact store on an S3-compatible server: patches, transcripts and archived logs go to
 * the bucket, the API streams them from there, and an outage is a retry or a clear 503, never a
 * wrong patch.
 */
let s3: S3TestServer;
let port: number;
let stack: Stack;

const S3_ENV = { AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };

beforeAll(async () => {
  Object.assign(process.env, S3_ENV);
  s3 = await startS3Server({ buckets: ['artifacts'] });
  port = Number(new URL(s3.endpoint).port);
  stack = await startStack({
    repos: {
      'app.git': async (repo) => void (await repo.commit({ 'a.txt': 'a\n' })),
    },
    env: {
      PATCHBAY_ARTIFACTS_S3_BUCKET: 'artifacts',
      PATCHBAY_ARTIFACTS_S3_ENDPOINT: s3.endpoint,
      PATCHBAY_ARTIFACTS_S3_PREFIX: 'e2e',
    },
    script: scenarioScript({
      edit: steps([shell('echo changed > a.txt')]),
      slow: steps([shell('sleep 3; echo slow > a.txt')]),
    }),
  });
});

afterAll(async () => {
  await stack?.close();
  await s3?.close();
});

async function submit(prompt: string): Promise<string> {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt,
  });
  expect(res.status).toBe(202);
  return res.body.id as string;
}

describe('artifacts on S3', () => {
  it('stores a task’s patch and log in the bucket and serves them from it', async () => {
    const id = await submit('SCENARIO:edit');
    const task = await waitForTask(stack, id);
    expect(task.status).toBe('succeeded');
    const patch = await fetch(`${stack.url}/v1/tasks/${id}/patch`);
    expect(patch.status).toBe(200);
    const text = await patch.text();
    expect(text).toContain('+changed');
    expect(Number(patch.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    // Nothing of it on the local disk.
    expect(existsSync(join(stack.config.dataDir, 'artifacts'))).toBe(false);
    const events = await call(stack, 'GET', `/v1/tasks/${id}/events`);
    expect(events.body.events.at(-1)).toMatchObject({ type: 'status', status: 'succeeded' });
  });

  it('answers 503 storage_unavailable while the bucket is down, and the patch again after', async () => {
    const id = await submit('SCENARIO:edit');
    expect((await waitForTask(stack, id)).status).toBe('succeeded');
    await s3.close();
    try {
      const res = await call(stack, 'GET', `/v1/tasks/${id}/patch`);
      expect(res.status).toBe(503);
      expect(res.body.error.code).toBe('storage_unavailable');
      // The record is in Redis: status reads do not need the bucket.
      expect((await call(stack, 'GET', `/v1/tasks/${id}`)).body.status).toBe('succeeded');
    } finally {
      s3 = await startS3Server({ buckets: ['artifacts'], port });
    }
    // A new, empty server: the old objects are gone, and the API says so instead of failing.
    expect((await call(stack, 'GET', `/v1/tasks/${id}/patch`)).body.error.code).toBe(
      'patch_not_ready',
    );
  });

  it('retries a task whose patch could not be stored, and ends it with the right patch', async () => {
    const id = await submit('SCENARIO:slow');
    const until = Date.now() + 30_000;
    while ((await call(stack, 'GET', `/v1/tasks/${id}`)).body.phase !== 'agent') {
      expect(Date.now()).toBeLessThan(until);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await s3.close();
    let retried = false;
    try {
      while (!retried && Date.now() < until + 30_000) {
        const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events`);
        retried = body.events.some(
          (e: { type: string; code?: string; message?: string }) =>
            e.type === 'error' &&
            e.code === 'storage_unavailable' &&
            e.message?.includes('will be retried'),
        );
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    } finally {
      s3 = await startS3Server({ buckets: ['artifacts'], port });
    }
    expect(retried).toBe(true);
    const task = await waitForTask(stack, id);
    expect(task.status).toBe('succeeded');
    expect(task.tries).toBeGreaterThan(1);
    const patch = await call(stack, 'GET', `/v1/tasks/${id}/patch`);
    expect(patch.status).toBe(200);
    expect(patch.body).toContain('+slow');
  });
});
