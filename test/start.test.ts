import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  return port;
}

interface Run {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<number | null>;
}

function launch(entry: string, env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: root,
    env: { ...process.env, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, stdout: () => out, stderr: () => err, exited };
}

async function waitFor(predicate: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('the service launcher (npm start)', () => {
  const runs: Run[] = [];
  afterEach(() => {
    for (const run of runs.splice(0)) run.child.kill('SIGKILL');
  });

  it('serves /healthz, refuses a second start on the same port, and stops cleanly on Ctrl-C', async () => {
    const port = await freePort();
    const first = launch('infra/local/serve.ts', { PORT: String(port) });
    runs.push(first);
    await waitFor(() => first.stdout().includes('API listening on'), 30_000);
    expect(first.stdout()).toContain(`http://127.0.0.1:${port}`);

    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(health.status).toBe(200);
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`);
    expect(await ready.json()).toEqual({
      status: 'ready',
      checks: { redis: 'ok', sandboxes: 'ok' },
    });

    const second = launch('infra/local/serve.ts', { PORT: String(port) });
    runs.push(second);
    expect(await second.exited).toBe(1);
    expect(second.stderr()).toContain(`already running on port ${port}`);
    expect(second.stderr()).not.toMatch(/\n\s+at /);

    first.child.kill('SIGINT');
    expect(await first.exited).toBe(0);
    await expect(fetch(`http://127.0.0.1:${port}/healthz`)).rejects.toThrow();
  });

  it('stops at start with one line naming a bad variable', async () => {
    const run = launch('apps/api/src/main.ts', { PORT: 'eighty' });
    runs.push(run);
    expect(await run.exited).toBe(2);
    expect(run.stderr().trim()).toMatch(
      /^patchbay-api: invalid configuration: PORT: expected a number \(got "eighty"\)$/,
    );
  });

  it.each(['apps/api/src/main.ts', 'apps/worker/src/main.ts'])(
    '%s stops with one line naming a bad repository host entry',
    async (entry) => {
      const run = launch(entry, { PATCHBAY_REPO_HOSTS: 'github.com,ftp://files.example' });
      runs.push(run);
      expect(await run.exited).toBe(2);
      expect(run.stderr().trim()).toMatch(
        /^patchbay-(api|worker): invalid configuration: PATCHBAY_REPO_HOSTS: repository host entry "ftp:\/\/files.example": the scheme must be https, http or ssh/,
      );
      expect(run.stderr().trim().split('\n')).toHaveLength(1);
    },
  );

  it('never prints the model key, even when it is malformed config elsewhere', async () => {
    const run = launch('apps/worker/src/main.ts', {
      OPENAI_API_KEY: 'sk-test-secret',
      PATCHBAY_WORKER_CONCURRENCY: '0',
    });
    runs.push(run);
    expect(await run.exited).toBe(2);
    expect(run.stderr()).toContain('PATCHBAY_WORKER_CONCURRENCY');
    expect(run.stderr() + run.stdout()).not.toContain('sk-test-secret');
  });
});
