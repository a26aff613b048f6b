import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * `network: allowlist` on the real stack: the agent's commands reach the listed names through
 * the worker's egress proxy (a loopback port in the sandbox), and nothing else. `allowed.test` is a
 * local HTTPS server the operator pinned (PATCHBAY_EGRESS_PINNED); every other name is refused.
 */
const run = promisify(execFile);
let stack: Stack;
let https: Server;
let port = 0;
let dir: string;

const probe = (name: string, url: string, extra = '') =>
  shell(
    `code=$(curl -sk -m 10 ${extra} -o /tmp/${name}.out -w '%{http_code}' ${url}); echo "${name} exit=$? code=$code body=$(cat /tmp/${name}.out 2>/dev/null)"`,
  );

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'patchbay-egress-'));
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=allowed.test',
    '-keyout',
    join(dir, 'key.pem'),
    '-out',
    join(dir, 'cert.pem'),
  ]);
  https = createServer(
    { key: await readFile(join(dir, 'key.pem')), cert: await readFile(join(dir, 'cert.pem')) },
    (req, res) => res.end(`hello from ${req.headers.host}`),
  );
  https.listen(0, '127.0.0.1');
  await once(https, 'listening');
  port = (https.address() as AddressInfo).port;
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    env: {
      PATCHBAY_EGRESS_DOMAINS: 'allowed.test,localhost,*.pypi.org',
      PATCHBAY_EGRESS_PINNED: 'allowed.test=127.0.0.1',
    },
    script: scenarioScript({
      probe: steps([
        probe('allowed', `https://allowed.test:${port}/`),
        probe('unlisted', `https://unlisted.test:${port}/`),
        // Allowed by name, but it resolves to a loopback address.
        probe('private', `https://localhost:${port}/`, "--noproxy ''"),
        probe('ip', `https://192.0.2.10:${port}/`, "--noproxy ''"),
        // Without the proxy nothing answers: the network has no way out.
        probe('direct', `https://192.0.2.10:${port}/`, "--noproxy '*' --connect-timeout 3"),
      ]),
    }),
  });
}, 180_000);

afterAll(async () => {
  await stack?.close();
  https?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('network: allowlist', () => {
  it('reaches the listed names through the proxy, and reports every refusal as network.blocked', async () => {
    const { status, body } = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'SCENARIO:probe reach out',
      environment: { network: 'allowlist', allowDomains: ['allowed.test', 'localhost'] },
    });
    expect(status).toBe(202);
    const task = await waitForTask(stack, body.id, {}, 120_000);
    expect(task.status).toBe('succeeded');
    expect(task.environment).toMatchObject({
      network: 'allowlist',
      allowDomains: ['allowed.test', 'localhost'],
    });
    const { body: log } = await call(stack, 'GET', `/v1/tasks/${body.id}/events?limit=1000`);
    const events = log.events as Record<string, any>[];
    const said = (name: string): string =>
      events.find((e) => e.type === 'tool_output' && e.output.includes(`${name} exit=`))!.output;

    expect(said('allowed')).toContain(`exit=0 code=200 body=hello from allowed.test:${port}`);
    expect(said('unlisted')).not.toContain('exit=0');
    expect(said('private')).not.toContain('exit=0');
    expect(said('ip')).not.toContain('exit=0');
    expect(said('direct')).not.toContain('exit=0');
    const blocked = events.filter((e) => e.type === 'network.blocked');
    expect(blocked.map(({ host, port: p, reason }) => ({ host, port: p, reason }))).toEqual([
      { host: 'unlisted.test', port, reason: 'not_allowed' },
      { host: 'localhost', port, reason: 'private_address' },
      { host: '192.0.2.10', port, reason: 'not_allowed' },
    ]);
  });

  it("refuses an allowlist outside the operator's list, or none at all, at submit", async () => {
    for (const environment of [
      { network: 'allowlist', allowDomains: ['registry.npmjs.org'] },
      { network: 'allowlist', allowDomains: ['*.evil.test'] },
      { network: 'allowlist' },
    ]) {
      const { status, body } = await call(stack, 'POST', '/v1/tasks', {
        repo: { url: stack.git.url('app.git') },
        prompt: 'anything',
        environment,
      });
      expect(status, JSON.stringify(environment)).toBe(422);
      expect(body.error.code).toBe('policy_refused');
    }
    // Names under an allowed wildcard are within it.
    const { status } = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'SCENARIO:none fine',
      environment: { network: 'allowlist', allowDomains: ['files.pypi.org', '*.pypi.org'] },
    });
    expect(status).toBe(202);
  });
});
