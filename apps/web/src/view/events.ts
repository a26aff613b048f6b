import type { PlanStep, TaskEvent, TaskPhase, TaskStatus } from '@patchbay/core';

/** A failure as events carry it. */
interface ItemError {
  code: string;
  message: string;
}

/**
 * One entry of the log as the page shows it. A tool call and its output are one entry (the
 * command with its exit code and output), and a script's streamed output and its closing
 * `command` event are one entry too; `pending` until the second half arrives.
 */
export type LogItem = { key: string; time: string } & (
  | { kind: 'turn'; n: number; prompt: string }
  | { kind: 'status'; status: TaskStatus; error: ItemError | null }
  | {
      kind: 'phase';
      phase: TaskPhase;
      try: number | null;
      /** A follow-up's provision: whether it went on in the kept sandbox. */
      warm: boolean | null;
    }
  | { kind: 'message'; text: string }
  | { kind: 'reasoning'; text: string }
  | {
      kind: 'command';
      /** `agent` for the agent's shell calls; `setup` / `verify` for the task's own scripts. */
      phase: TaskPhase;
      command: string;
      exitCode: number | null;
      durationMs: number | null;
      timedOut: boolean;
      output: string;
      pending: boolean;
    }
  | { kind: 'edit'; files: string[]; patch: string; ok: boolean | null; output: string }
  | { kind: 'tool'; name: string; args: string; ok: boolean | null; output: string }
  | { kind: 'plan'; explanation: string | null; steps: PlanStep[] }
  | { kind: 'attempt'; attempt: number; model: string; status: TaskStatus; error: ItemError | null }
  | { kind: 'compaction'; summarizedItems: number }
  | { kind: 'blocked'; host: string; port: number; reason: string }
  | { kind: 'error'; code: string; message: string }
);

export interface TokenTotals {
  inputTokens: number;
  cachedInputTokens: number;
  outputTokens: number;
  reasoningTokens: number;
}

/** A log folded for display; grown by `foldEvents` as events arrive. */
export interface FoldedLog {
  items: LogItem[];
  /** The highest `seq` folded in: a resumed stream starts after it, repeats are dropped. */
  lastSeq: number;
  /** The latest plan the agent published. */
  plan: PlanStep[] | null;
  usage: TokenTotals;
  /** Where each pending entry is in `items`, by tool call id or by script phase. */
  open: Record<string, number>;
}

export const EMPTY_LOG: FoldedLog = {
  items: [],
  lastSeq: 0,
  plan: null,
  usage: { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0 },
  open: {},
};

/** A shell call's arguments as the command line a person reads. */
export function commandOf(args: string): string {
  try {
    const parsed = JSON.parse(args) as { command?: unknown };
    if (Array.isArray(parsed.command)) return parsed.command.map(String).join(' ');
    if (typeof parsed.command === 'string') return parsed.command;
  } catch {
    // Arguments that are not JSON are shown as sent.
  }
  return args;
}

/** The files an `apply_patch` call touches, and its patch text. */
export function editOf(args: string): { files: string[]; patch: string } {
  let patch = args;
  try {
    const parsed = JSON.parse(args) as { input?: unknown };
    if (typeof parsed.input === 'string') patch = parsed.input;
  } catch {
    // As sent.
  }
  const files = [...patch.matchAll(/^\*\*\* (Add|Update|Delete) File: (.+)$/gm)].map(
    (m) => `${m[1]!.toLowerCase()} ${m[2]!.trim()}`,
  );
  return { files, patch };
}

const scriptKey = (phase: string): string => `script:${phase}`;

/**
 * Folds events into the log, in order: events at or below `lastSeq` (a stream resumed after a
 * reconnect repeats none, but a page that read the JSON log first may see some twice) are
 * dropped. Returns a new log; the one given is not changed.
 */
export function foldEvents(log: FoldedLog, events: readonly TaskEvent[]): FoldedLog {
  const items = [...log.items];
  const open = { ...log.open };
  let { lastSeq, plan, usage } = log;
  const update = (index: number, change: Partial<LogItem>): void => {
    items[index] = { ...items[index]!, ...change } as LogItem;
  };
  for (const event of events) {
    if (event.seq <= lastSeq) continue;
    lastSeq = event.seq;
    const base = { key: String(event.seq), time: event.time };
    switch (event.type) {
      case 'turn':
        items.push({
          ...base,
          kind: 'turn',
          n: event.turn,
          prompt: event.prompt,
        });
        break;
      case 'status':
        items.push({ ...base, kind: 'status', status: event.status, error: event.error ?? null });
        break;
      case 'phase':
        items.push({
          ...base,
          kind: 'phase',
          phase: event.phase,
          try: event.try ?? null,
          warm: event.warm ?? null,
        });
        break;
      case 'assistant_message':
        items.push({ ...base, kind: 'message', text: event.text });
        break;
      case 'reasoning':
        items.push({ ...base, kind: 'reasoning', text: event.text });
        break;
      case 'output': {
        const at = open[scriptKey(event.phase)];
        if (at === undefined) {
          open[scriptKey(event.phase)] = items.length;
          items.push({
            ...base,
            kind: 'command',
            phase: event.phase,
            command: event.phase,
            exitCode: null,
            durationMs: null,
            timedOut: false,
            output: event.text,
            pending: true,
          });
        } else {
          const item = items[at] as Extract<LogItem, { kind: 'command' }>;
          update(at, { output: item.output + event.text });
        }
        break;
      }
      case 'command': {
        const closing = {
          command: event.command,
          exitCode: event.exitCode,
          durationMs: event.durationMs,
          timedOut: !!event.timedOut,
          pending: false,
        };
        const at = open[scriptKey(event.phase)];
        if (at === undefined) {
          items.push({ ...base, kind: 'command', phase: event.phase, output: '', ...closing });
        } else {
          update(at, closing);
          delete open[scriptKey(event.phase)];
        }
        break;
      }
      case 'tool_call': {
        open[event.callId] = items.length;
        if (event.name === 'shell') {
          items.push({
            ...base,
            kind: 'command',
            phase: 'agent',
            command: commandOf(event.arguments),
            exitCode: null,
            durationMs: null,
            timedOut: false,
            output: '',
            pending: true,
          });
        } else if (event.name === 'apply_patch') {
          items.push({ ...base, kind: 'edit', ...editOf(event.arguments), ok: null, output: '' });
        } else {
          items.push({
            ...base,
            kind: 'tool',
            name: event.name,
            args: event.arguments,
            ok: null,
            output: '',
          });
        }
        break;
      }
      case 'tool_output': {
        const at = open[event.callId];
        if (at === undefined) {
          items.push({
            ...base,
            kind: 'tool',
            name: event.name,
            args: '',
            ok: event.ok,
            output: event.output,
          });
          break;
        }
        delete open[event.callId];
        const item = items[at]!;
        if (item.kind === 'command') {
          update(at, {
            exitCode: event.exitCode ?? null,
            durationMs: event.durationMs,
            output: event.output,
            pending: false,
          });
        } else {
          update(at, { ok: event.ok, output: event.output });
        }
        break;
      }
      case 'plan':
        plan = event.steps;
        items.push({
          ...base,
          kind: 'plan',
          explanation: event.explanation ?? null,
          steps: event.steps,
        });
        break;
      case 'usage':
        usage = {
          inputTokens: usage.inputTokens + event.inputTokens,
          cachedInputTokens: usage.cachedInputTokens + event.cachedInputTokens,
          outputTokens: usage.outputTokens + event.outputTokens,
          reasoningTokens: usage.reasoningTokens + event.reasoningTokens,
        };
        break;
      case 'attempt':
        items.push({
          ...base,
          kind: 'attempt',
          attempt: event.attempt,
          model: event.model,
          status: event.status,
          error: event.error ?? null,
        });
        break;
      case 'compaction':
        items.push({ ...base, kind: 'compaction', summarizedItems: event.summarizedItems });
        break;
      case 'error':
        items.push({ ...base, kind: 'error', code: event.code, message: event.message });
        break;
      case 'network.blocked':
        items.push({
          ...base,
          kind: 'blocked',
          host: event.host,
          port: event.port,
          reason: event.reason,
        });
        break;
    }
  }
  return { items, lastSeq, plan, usage, open };
}
