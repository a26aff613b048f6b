import type { PlanStep, TaskEventBody } from '@patchbay/core';
import type { CliTranslator } from './cli-agent.js';

/** An item of Codex CLI's `exec --json` stream (the fields Patchbay reads). */
interface CodexItem {
  id?: string;
  type?: string;
  text?: string;
  command?: string;
  aggregated_output?: string;
  exit_code?: number | null;
  status?: string;
  message?: string;
  changes?: { path?: string; kind?: string }[];
  items?: { text?: string; completed?: boolean }[];
  server?: string;
  tool?: string;
  query?: string;
}

interface CodexEvent {
  type?: string;
  item?: CodexItem;
  message?: string;
  error?: { message?: string };
  thread_id?: string;
}

/** What Codex runs a command line as (`/bin/bash -lc '<script>'`), back to the script. */
export function unwrapShell(command: string): string {
  const quoted = /^\/bin\/(?:ba)?sh -l?c '((?:[^']|'\\'')*)'$/.exec(command);
  if (quoted) return quoted[1]!.replaceAll("'\\''", "'");
  const doubled = /^\/bin\/(?:ba)?sh -l?c "((?:[^"\\]|\\.)*)"$/.exec(command);
  if (doubled) return doubled[1]!.replace(/\\(["\\$`])/g, '$1');
  return command;
}

const KINDS: Record<string, string> = { add: 'Add', update: 'Update', delete: 'Delete' };

/** A file change as the `apply_patch` call a person (and the page) reads: the files it touches. */
function patchOf(changes: CodexItem['changes'], workspace: string): string {
  const lines = (changes ?? []).map((change) => {
    const path = (change.path ?? '').startsWith(`${workspace}/`)
      ? change.path!.slice(workspace.length + 1)
      : (change.path ?? '');
    return `*** ${KINDS[change.kind ?? ''] ?? 'Update'} File: ${path}`;
  });
  return ['*** Begin Patch', ...lines, '*** End Patch'].join('\n');
}

/**
 * Codex CLI's JSONL events as Patchbay events: its commands as shell calls with their exit codes
 * and output, its file changes as apply_patch calls, its messages, reasoning and to-do list
 * (as the plan); anything it reports as an error as output of the agent phase. Usage is not
 * taken from Codex: the gateway counts what the model server reported.
 */
export class CodexTranslator implements CliTranslator {
  #summary: string | null = null;
  #failure: string | null = null;
  #toolCalls = 0;
  #thread: string | null = null;
  readonly #started = new Map<string, number>();

  constructor(
    private readonly emit: (event: TaskEventBody) => void,
    private readonly workspace = '/workspace',
    private readonly now: () => number = Date.now,
  ) {}

  line(text: string): void {
    let event: CodexEvent;
    try {
      event = JSON.parse(text) as CodexEvent;
    } catch {
      // Codex prints a few lines that are not events (warnings on stdout): kept as output.
      if (text.trim() !== '') this.emit({ type: 'output', phase: 'agent', text: `${text}\n` });
      return;
    }
    switch (event.type) {
      case 'thread.started':
        this.#thread = event.thread_id ?? null;
        return;
      case 'item.started':
        return this.#started_(event.item ?? {});
      case 'item.completed':
        return this.#completed(event.item ?? {});
      case 'turn.failed':
        this.#failure = event.error?.message ?? 'the turn failed';
        return;
      case 'error':
        this.emit({ type: 'output', phase: 'agent', text: `codex: ${event.message ?? ''}\n` });
        return;
      default:
        return;
    }
  }

  #callId(item: CodexItem): string {
    return `codex_${item.id ?? this.#toolCalls}`;
  }

  #started_(item: CodexItem): void {
    const callId = this.#callId(item);
    if (item.type === 'command_execution') {
      this.#started.set(callId, this.now());
      this.#toolCalls++;
      this.emit({
        type: 'tool_call',
        callId,
        name: 'shell',
        arguments: JSON.stringify({ command: unwrapShell(item.command ?? '') }),
      });
    } else if (item.type === 'file_change') {
      this.#started.set(callId, this.now());
      this.#toolCalls++;
      this.emit({
        type: 'tool_call',
        callId,
        name: 'apply_patch',
        arguments: JSON.stringify({ input: patchOf(item.changes, this.workspace) }),
      });
    }
  }

  #completed(item: CodexItem): void {
    const callId = this.#callId(item);
    switch (item.type) {
      case 'agent_message':
        this.#summary = item.text ?? this.#summary;
        this.emit({ type: 'assistant_message', text: item.text ?? '' });
        return;
      case 'reasoning':
        this.emit({ type: 'reasoning', text: item.text ?? '' });
        return;
      case 'command_execution':
      case 'file_change': {
        // A completion without its start (Codex skips `item.started` for some) is a call too.
        if (!this.#started.has(callId)) this.#started_(item);
        const durationMs = Math.max(0, this.now() - this.#started.get(callId)!);
        this.#started.delete(callId);
        const shell = item.type === 'command_execution';
        this.emit({
          type: 'tool_output',
          callId,
          name: shell ? 'shell' : 'apply_patch',
          ok: shell ? item.exit_code === 0 : item.status === 'completed',
          ...(shell ? { exitCode: item.exit_code ?? null } : {}),
          durationMs,
          output: shell ? (item.aggregated_output ?? '') : (item.status ?? ''),
        });
        return;
      }
      case 'todo_list': {
        const steps: PlanStep[] = (item.items ?? []).map((t) => ({
          step: t.text ?? '',
          status: t.completed ? 'completed' : 'pending',
        }));
        const next = steps.find((s) => s.status === 'pending');
        if (next) next.status = 'in_progress';
        this.emit({ type: 'plan', steps });
        return;
      }
      case 'error':
        this.emit({ type: 'output', phase: 'agent', text: `codex: ${item.message ?? ''}\n` });
        return;
      case 'mcp_tool_call':
      case 'web_search':
        this.#toolCalls++;
        this.emit({
          type: 'tool_call',
          callId,
          name: item.type === 'web_search' ? 'web_search' : `${item.server}.${item.tool}`,
          arguments: JSON.stringify(item.type === 'web_search' ? { query: item.query } : {}),
        });
        return;
      default:
        return;
    }
  }

  finish(): {
    summary: string | null;
    failure: string | null;
    toolCalls: number;
    thread: string | null;
  } {
    return {
      summary: this.#summary,
      failure: this.#failure,
      toolCalls: this.#toolCalls,
      thread: this.#thread,
    };
  }
}
