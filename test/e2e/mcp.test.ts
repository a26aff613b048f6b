import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, startStack } from '../support/stack.js';

/**
 * Patchbay as an MCP server, driven by the SDK's own client on the real stack: over Streamable
 * HTTP at `/mcp` with a tenant's key, and over stdio through `patchbay mcp`.
 */
const run = promisify(execFile);
const KEY = 'mcp-tenant-key-0123456789abcdef';
const OTHER = 'mcp-other-key-0123456789abcdef';
const PUSH_TOKEN = 'mcp-push-token-4e8a1b6c2d';
const bin = fileURLToPath(new URL('../../node_modules/.bin/patchbay', import.meta.url));
const EDIT = `*** Begin Patch
*** Update File: README.md
@@
-# Demo
+# Demo, edited over MCP
*** End Patch`;

let stack: Stack;

beforeAll(async () => {
  stack = await startStack({
    repos: { 'app.git': async (repo) => void (await repo.commit({ 'README.md': '# Demo\n' })) },
    git: { pushTokens: { 'app.git': [PUSH_TOKEN] } },
    env: (git) => ({
      PATCHBAY_API_KEYS: `acme:${KEY},other:${OTHER}`,
      PATCHBAY_GIT_CREDENTIALS: `${git.host}:${git.port}=${PUSH_TOKEN}`,
    }),
    script: scenarioScript({
      edit: steps([applyPatch(EDIT)], 'Edited the README.'),
      more: steps([shell('echo "More." >> README.md')], 'Added a line.'),
    }),
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

async function httpClient(key: string): Promise<Client> {
  const client = new Client({ name: 'patchbay-test', version: '1.0.0' });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${key}` } },
    }),
  );
  return client;
}

const text = (result: any): string => result.content.map((c: any) => c.text).join('\n');

/** Calls get_task until the task has ended (bounded). */
async function ended(client: Client, id: string): Promise<any> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const result: any = await client.callTool({ name: 'get_task', arguments: { id } });
    expect(result.isError, text(result)).toBeFalsy();
    if (['succeeded', 'failed', 'cancelled'].includes(result.structuredContent.status))
      return result.structuredContent;
    if (Date.now() > deadline) throw new Error(`task ${id} did not end`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function submitAndPatch(client: Client): Promise<{ id: string; patch: string }> {
  const submitted: any = await client.callTool({
    name: 'submit_task',
    arguments: {
      repo: { url: stack.git.url('app.git') },
      prompt: 'Edit the README. SCENARIO:edit',
    },
  });
  expect(submitted.isError, text(submitted)).toBeFalsy();
  const id: string = submitted.structuredContent.id;
  expect(submitted.structuredContent).toMatchObject({ status: 'queued', origin: { kind: 'mcp' } });
  const task = await ended(client, id);
  expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
  const patch: any = await client.callTool({ name: 'get_patch', arguments: { id } });
  expect(patch.isError, text(patch)).toBeFalsy();
  return { id, patch: text(patch) };
}

describe('MCP server', () => {
  it('over Streamable HTTP: lists the tools, submits a task, reads its log and downloads its patch', async () => {
    const client = await httpClient(KEY);
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name).sort()).toEqual([
        'cancel_task',
        'choose_attempt',
        'deliver',
        'follow_up',
        'get_patch',
        'get_task',
        'list_attempts',
        'read_log',
        'submit_task',
      ]);
      const { id, patch } = await submitAndPatch(client);
      expect(patch).toContain('-# Demo\n+# Demo, edited over MCP');
      // The same bytes the REST API serves.
      const rest = await fetch(`${stack.url}/v1/tasks/${id}/patch`, {
        headers: { authorization: `Bearer ${KEY}` },
      });
      expect(await rest.text()).toBe(patch);

      const log: any = await client.callTool({ name: 'read_log', arguments: { id, last: 200 } });
      expect(text(log)).toMatch(/^\d+ tool_call: apply_patch /m);
      expect(text(log)).toMatch(/^\d+ status: succeeded$/m);

      const attempts: any = await client.callTool({ name: 'list_attempts', arguments: { id } });
      expect(attempts.structuredContent.attempts).toHaveLength(1);

      // API errors come back as tool errors the model can read.
      const missing: any = await client.callTool({
        name: 'get_task',
        arguments: { id: '00000000-0000-4000-8000-000000000000' },
      });
      expect(missing.isError).toBe(true);
      expect(text(missing)).toMatch(/^not_found: /);
      const invalid: any = await client.callTool({
        name: 'deliver',
        arguments: { id, branch: '../escape' },
      });
      expect(invalid.isError).toBe(true);
    } finally {
      await client.close();
    }
  });

  it('follows up, chooses an attempt and delivers, each as the REST call does', async () => {
    const client = await httpClient(KEY);
    try {
      // Two attempts, then the second chosen over the rule's pick.
      const submitted: any = await client.callTool({
        name: 'submit_task',
        arguments: {
          repo: { url: stack.git.url('app.git') },
          prompt: 'Edit the README. SCENARIO:edit',
          attempts: 2,
        },
      });
      expect(submitted.isError, text(submitted)).toBeFalsy();
      const id: string = submitted.structuredContent.id;
      expect((await ended(client, id)).status).toBe('succeeded');
      const chosen: any = await client.callTool({
        name: 'choose_attempt',
        arguments: { id, attempt: 2 },
      });
      expect(chosen.isError, text(chosen)).toBeFalsy();
      const attempts: any = await client.callTool({ name: 'list_attempts', arguments: { id } });
      expect(attempts.structuredContent.chosen).toBe(2);

      // A second turn on the chosen tree.
      const next: any = await client.callTool({
        name: 'follow_up',
        arguments: { id, prompt: 'One more line. SCENARIO:more' },
      });
      expect(next.isError, text(next)).toBeFalsy();
      expect(next.structuredContent).toMatchObject({ status: 'queued', turn: 2 });
      expect((await ended(client, id)).status).toBe('succeeded');
      const patch: any = await client.callTool({ name: 'get_patch', arguments: { id } });
      expect(text(patch)).toContain('+# Demo, edited over MCP\n+More.');

      // Delivered to a branch, pushed with the operator's credential.
      const delivered: any = await client.callTool({
        name: 'deliver',
        arguments: { id, branch: 'mcp/readme' },
      });
      expect(delivered.isError, text(delivered)).toBeFalsy();
      expect(delivered.structuredContent.delivery).toMatchObject({
        status: 'delivered',
        branch: 'mcp/readme',
        turn: 2,
      });
      const { stdout } = await run('git', ['ls-remote', stack.git.url('app.git'), 'mcp/readme']);
      expect(stdout.split('\t')[0]).toBe(delivered.structuredContent.delivery.commit);
    } finally {
      await client.close();
    }
  }, 180_000);

  it("keeps to the caller's tenant and key", async () => {
    const acme = await httpClient(KEY);
    const other = await httpClient(OTHER);
    try {
      const submitted: any = await acme.callTool({
        name: 'submit_task',
        arguments: { repo: { url: stack.git.url('app.git') }, prompt: 'SCENARIO:edit' },
      });
      const seen: any = await other.callTool({
        name: 'get_task',
        arguments: { id: submitted.structuredContent.id },
      });
      expect(seen.isError).toBe(true);
      expect(text(seen)).toMatch(/^not_found: /);
      await ended(acme, submitted.structuredContent.id);
    } finally {
      await Promise.all([acme.close(), other.close()]);
    }
    // No key, a wrong key: refused before any MCP exchange.
    for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789abcdef' }]) {
      const res = await fetch(`${stack.url}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          ...headers,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
      });
      expect(res.status).toBe(401);
    }
    const get = await fetch(`${stack.url}/mcp`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(get.status).toBe(405);
  });

  it('over stdio through `patchbay mcp`', async () => {
    const client = new Client({ name: 'patchbay-test', version: '1.0.0' });
    const transport = new StdioClientTransport({
      command: bin,
      args: ['mcp'],
      env: {
        ...(process.env as Record<string, string>),
        PATCHBAY_URL: stack.url,
        PATCHBAY_API_KEY: KEY,
      },
      stderr: 'pipe',
    });
    await client.connect(transport);
    try {
      const { patch } = await submitAndPatch(client);
      expect(patch).toContain('+# Demo, edited over MCP');
    } finally {
      await client.close();
    }
  }, 120_000);
});
