import { loadConfig } from '@patchbay/core';
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { startWorker } from '@patchbay/worker';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';
import { type TlsEngine, startTlsEngine } from '../support/tls-engine.js';

/**
 * A worker whose only engine is another "host"'s: a dockerd reached over TCP with TLS client
 * certificates (DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, as the docker CLI reads them).
 * Nothing of the worker is on that engine's networks: the model gateway and the egress proxy
 * reach its sandboxes over the exec channel, like everything else.
 */
const IMAGE = process.env.PATCHBAY_SANDBOX_IMAGE ?? 'patchbay/sandbox:latest';
let engine: TlsEngine;
let stack: Stack;

const codexEdit = {
  name: 'exec_command',
  arguments: { cmd: 'echo "made on the remote engine" > remote.txt' },
};

beforeAll(async () => {
  engine = await startTlsEngine();
  await engine.copyImage(IMAGE);
  stack = await startStack({
    env: {
      ...engine.env,
      PATCHBAY_EGRESS_DOMAINS: '*.example.org',
      // Kept after the turn, so the test can see which engine it ran on.
      PATCHBAY_FOLLOWUP_KEEPALIVE_SECONDS: '120',
    },
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    script: scenarioScript({
      codex: (n) => (n === 0 ? { text: 'Editing.', calls: [codexEdit] } : { text: 'Done.' }),
      own: steps([shell('echo "and by the worker\'s own loop" > own.txt')]),
    }),
  });
}, 600_000);

afterAll(async () => {
  await stack?.close();
  await engine?.close();
}, 120_000);

describe('a remote engine over TLS', () => {
  it('runs a codex task end to end on it, the gateway reached with no network', async () => {
    const { status, body } = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'SCENARIO:codex write a file',
      agent: { runtime: 'codex' },
      environment: { network: 'allowlist', allowDomains: ['x.example.org'] },
    });
    expect(status).toBe(202);
    const task = await waitForTask(stack, body.id, {}, 240_000);
    expect(task.error).toBeNull();
    expect(task.status).toBe('succeeded');
    const patch = await (await fetch(`${stack.url}/v1/tasks/${body.id}/patch`)).text();
    expect(patch).toContain('+made on the remote engine');
    expect(task.usage.modelCalls).toBe(2);
    // Its sandbox is on the remote engine, and nothing of it on this machine's own.
    const label = `${LABELS.task}=${body.id}`;
    expect(await engine.containers(label)).toHaveLength(1);
    const local = await createDockerClient().listContainers({
      all: true,
      filters: { label: [label] },
    });
    expect(local).toEqual([]);
  });

  it("runs a task of Patchbay's own loop on it, with setup's network taken away after", async () => {
    const { body } = await call(stack, 'POST', '/v1/tasks', {
      repo: { url: stack.git.url('app.git') },
      prompt: 'SCENARIO:own write a file',
      environment: { setup: 'echo set up > /tmp/setup.txt', verify: 'test -f own.txt' },
    });
    const task = await waitForTask(stack, body.id, {}, 240_000);
    expect(task.status).toBe('succeeded');
    expect(task.result.verify.passed).toBe(true);
  });

  it('refuses to start a worker whose client certificate the engine does not trust, saying so', async () => {
    const config = loadConfig({
      ...process.env,
      ...stack.env,
      DOCKER_CERT_PATH: engine.rogueCertPath,
      PATCHBAY_WORKER_ID: 'rogue-worker',
    });
    await expect(startWorker(config, pino({ level: 'silent' }))).rejects.toThrow(
      /refused this worker's TLS client certificate/,
    );
  });
});
