import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { DeliveryRequest, TaskSpec } from '@patchbay/core';
import { z } from 'zod';

/**
 * The Patchbay API as the MCP tools reach it, as the caller: over HTTP with the caller's key (the
 * CLI's `patchbay mcp`), or in process through the API's own routes (`/mcp`). Every tool is one
 * or a few of these requests, so a tool call is authorized, validated, rate limited and answered
 * exactly as the same REST call would be.
 */
export interface PatchbayApi {
  /** Resolves with whatever status the API answers; rejects only when it cannot be reached. */
  request(method: 'GET' | 'POST', path: string, body?: unknown): Promise<ApiAnswer>;
}

export interface ApiAnswer {
  status: number;
  body: string;
}

/** Most bytes of a patch a tool answers with; the rest is left out, saying how much. */
const PATCH_LIMIT = 256 * 1024;
/** Most characters of one event's text in a log tail. */
const EVENT_TEXT_LIMIT = 400;
const TaskId = z.string().min(1).max(64).describe('The task id (from submit_task).');

/**
 * Patchbay as a Model Context Protocol server: tools to submit a task, follow it up, read its
 * status, log and patch, pick among its attempts and deliver it. One server per session; it
 * holds nothing but `api`.
 */
export function createMcpServer(api: PatchbayApi, version: string): McpServer {
  const server = new McpServer(
    { name: 'patchbay', version },
    {
      instructions:
        'Patchbay runs coding tasks on repositories in sandboxes. submit_task starts one and ' +
        'answers at once; poll get_task until its status is succeeded, failed or cancelled, then ' +
        'get_patch for the change. follow_up continues a finished task from where it stopped.',
    },
  );
  const json = (method: 'GET' | 'POST', path: string, body?: unknown) =>
    call(api, method, path, body);

  server.registerTool(
    'submit_task',
    {
      title: 'Submit a task',
      description:
        'Starts a coding task on a repository: the agent works on `prompt` in a sandbox with the ' +
        'repository at `repo.ref`. Answers at once with the queued task; poll get_task.',
      inputSchema: TaskSpec.shape,
    },
    (spec) => json('POST', '/v1/tasks', spec),
  );

  server.registerTool(
    'get_task',
    {
      title: 'Get a task',
      description: 'Status, phase, result (files changed, verify verdict), usage and timings.',
      inputSchema: { id: TaskId },
      annotations: { readOnlyHint: true },
    },
    ({ id }) => json('GET', `/v1/tasks/${encodeURIComponent(id)}`),
  );

  server.registerTool(
    'follow_up',
    {
      title: 'Follow up on a task',
      description:
        "Gives an ended task its next turn: the agent continues from the tree the last turn left, with `prompt` as the user's next message.",
      inputSchema: { id: TaskId, prompt: z.string().min(1).describe('What to do next.') },
    },
    ({ id, prompt }) => json('POST', `/v1/tasks/${encodeURIComponent(id)}/messages`, { prompt }),
  );

  server.registerTool(
    'read_log',
    {
      title: "Read the end of a task's log",
      description:
        'The last events of the task: phases, the commands the agent ran and their exit codes, its messages, setup and verify output.',
      inputSchema: {
        id: TaskId,
        last: z.number().int().min(1).max(500).default(50).describe('How many events.'),
      },
      annotations: { readOnlyHint: true },
    },
    async ({ id, last }) => {
      const events: LogEvent[] = [];
      let after = 0;
      for (;;) {
        const page = await api.request(
          'GET',
          `/v1/tasks/${encodeURIComponent(id)}/events?after=${after}&limit=1000`,
        );
        if (page.status >= 400) return failure(page);
        const body = JSON.parse(page.body) as { events: LogEvent[]; nextAfter: number };
        events.push(...body.events);
        if (events.length > last) events.splice(0, events.length - last);
        if (body.events.length < 1000) break;
        after = body.nextAfter;
      }
      return {
        content: [{ type: 'text', text: events.map(renderEvent).join('\n') || '(no events yet)' }],
      };
    },
  );

  server.registerTool(
    'get_patch',
    {
      title: "Get a task's patch",
      description:
        "The task's change as a unified diff (`git apply` takes it), or one attempt's. Answers an error until the task has ended with one.",
      inputSchema: {
        id: TaskId,
        attempt: z.number().int().min(1).optional().describe('One attempt, instead of the result.'),
      },
      annotations: { readOnlyHint: true },
    },
    async ({ id, attempt }) => {
      const path =
        attempt === undefined
          ? `/v1/tasks/${encodeURIComponent(id)}/patch`
          : `/v1/tasks/${encodeURIComponent(id)}/attempts/${attempt}/patch`;
      const answer = await api.request('GET', path);
      if (answer.status >= 400) return failure(answer);
      const bytes = Buffer.byteLength(answer.body);
      if (bytes === 0) return { content: [{ type: 'text', text: '(the task changed nothing)' }] };
      const text =
        bytes <= PATCH_LIMIT
          ? answer.body
          : `${Buffer.from(answer.body).subarray(0, PATCH_LIMIT).toString()}\n[… ${bytes - PATCH_LIMIT} more bytes: download ${path} for the whole patch]`;
      return { content: [{ type: 'text', text }] };
    },
  );

  server.registerTool(
    'list_attempts',
    {
      title: "List a task's attempts",
      description:
        "The attempts of the task's current turn (with attempts > 1): status, model, verify verdict, patch size; which one was chosen.",
      inputSchema: { id: TaskId },
      annotations: { readOnlyHint: true },
    },
    ({ id }) => json('GET', `/v1/tasks/${encodeURIComponent(id)}/attempts`),
  );

  server.registerTool(
    'choose_attempt',
    {
      title: 'Choose an attempt',
      description:
        "Makes attempt `attempt` the result of the task's last turn, overruling the rule.",
      inputSchema: { id: TaskId, attempt: z.number().int().min(1) },
    },
    ({ id, attempt }) =>
      json('POST', `/v1/tasks/${encodeURIComponent(id)}/attempts/${attempt}/choose`),
  );

  server.registerTool(
    'deliver',
    {
      title: "Deliver a task's result",
      description:
        "Pushes a succeeded task's result to a branch and, with `pullRequest`, opens a pull request; waits up to a minute for the outcome.",
      inputSchema: { id: TaskId, ...DeliveryRequest.shape },
    },
    ({ id, ...request }) =>
      json('POST', `/v1/tasks/${encodeURIComponent(id)}/deliver?wait=60`, request),
  );

  server.registerTool(
    'cancel_task',
    {
      title: 'Cancel a task',
      description: 'Stops a queued or running task; a finished one is left as it is.',
      inputSchema: { id: TaskId },
      annotations: { destructiveHint: true },
    },
    ({ id }) => json('POST', `/v1/tasks/${encodeURIComponent(id)}/cancel`),
  );

  return server;
}

/** A JSON answer as a tool result: the body as text and as structured content. */
async function call(
  api: PatchbayApi,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<CallToolResult> {
  const answer = await api.request(method, path, body);
  if (answer.status >= 400) return failure(answer);
  return {
    content: [{ type: 'text', text: answer.body }],
    structuredContent: JSON.parse(answer.body) as Record<string, unknown>,
  };
}

/** An API error as a tool error the model can read: its code and message. */
function failure(answer: ApiAnswer): CallToolResult {
  let text = `the Patchbay API answered ${answer.status}`;
  try {
    const { error } = JSON.parse(answer.body) as { error?: { code: string; message: string } };
    if (error) text = `${error.code}: ${error.message}`;
  } catch {
    // not JSON: the status says enough
  }
  return { isError: true, content: [{ type: 'text', text }] };
}

interface LogEvent {
  seq: number;
  type: string;
  [field: string]: unknown;
}

/** A field of an event as text (events are the API's JSON: strings, numbers, objects). */
function str(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return value === null ? '' : JSON.stringify(value);
    default:
      return '';
  }
}

/** One event as one line of text. */
function renderEvent(e: LogEvent): string {
  const cut = (value: unknown): string => {
    const text = str(value).replace(/\s+$/, '');
    return text.length > EVENT_TEXT_LIMIT ? `${text.slice(0, EVENT_TEXT_LIMIT)}…` : text;
  };
  const detail = (() => {
    switch (e.type) {
      case 'status': {
        const error = e.error as { message?: string } | undefined;
        return `${str(e.status)}${error?.message ? ` (${cut(error.message)})` : ''}`;
      }
      case 'phase':
        return str(e.phase);
      case 'turn':
        return `turn ${str(e.turn)}: ${cut(e.prompt)}`;
      case 'tool_call':
        return `${str(e.name)} ${cut(e.arguments)}`;
      case 'tool_output': {
        const exit =
          e.exitCode === undefined || e.exitCode === null ? '' : ` (exit ${str(e.exitCode)})`;
        return `${str(e.name)} ${e.ok ? 'ok' : 'failed'}${exit}: ${cut(e.output)}`;
      }
      case 'command':
        return `${str(e.phase)}: ${cut(e.command)} → exit ${str(e.exitCode)}`;
      case 'output':
        return `${str(e.phase)} output: ${cut(e.text)}`;
      case 'assistant_message':
      case 'reasoning':
        return cut(e.text);
      default:
        return cut(e);
    }
  })();
  return `${e.seq} ${e.type}: ${detail}`;
}
