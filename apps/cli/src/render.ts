import type { Attempt, Task, TaskEvent } from '@patchbay/core';

/** Longest tool output or setup/verify output echoed per event; the rest is counted, not shown. */
const OUTPUT_LINES = 12;

export interface RenderOptions {
  /** ANSI colours (only on a terminal). @default false */
  color?: boolean;
}

type Paint = (code: number, text: string) => string;

function painter(color: boolean | undefined): Paint {
  return color ? (code, text) => `\u001b[${code}m${text}\u001b[0m` : (_code, text) => text;
}

const dim = 2;
const red = 31;
const green = 32;
const yellow = 33;
const cyan = 36;
const bold = 1;

function indent(text: string, paint: Paint): string {
  const lines = text.replace(/\n+$/, '').split('\n');
  const shown = lines.length > OUTPUT_LINES ? lines.slice(-OUTPUT_LINES) : lines;
  const more =
    lines.length > shown.length
      ? [paint(dim, `    … ${lines.length - shown.length} earlier lines`)]
      : [];
  return [...more, ...shown.map((l) => paint(dim, `    ${l}`))].join('\n');
}

function exitMark(exitCode: number | null | undefined, paint: Paint): string {
  if (exitCode === 0) return paint(green, 'exit 0');
  if (exitCode === null || exitCode === undefined) return paint(red, 'no exit code');
  return paint(red, `exit ${exitCode}`);
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`;

/** A tool call's arguments as a person would read them: the command, or the patch's files. */
function describeCall(name: string, args: string): string {
  try {
    const parsed = JSON.parse(args) as Record<string, unknown>;
    if (name === 'shell') {
      const command = parsed.command;
      return `$ ${Array.isArray(command) ? command.join(' ') : String(command)}`;
    }
    if (name === 'apply_patch' && typeof parsed.input === 'string') {
      const files = [...parsed.input.matchAll(/^\*\*\* (Add|Update|Delete) File: (.+)$/gm)].map(
        (m) => `${m[1]!.toLowerCase()} ${m[2]!}`,
      );
      return `apply_patch: ${files.join(', ') || '(no files)'}`;
    }
  } catch {
    // Arguments that are not JSON are shown as sent.
  }
  return `${name} ${args}`;
}

/**
 * One event as readable terminal text (possibly several lines), or `null` for events not worth
 * a line of their own (token usage, reasoning, the tool call half of a call/output pair).
 */
export function renderEvent(event: TaskEvent, options: RenderOptions = {}): string | null {
  const paint = painter(options.color);
  switch (event.type) {
    case 'status': {
      const colour =
        event.status === 'succeeded'
          ? green
          : event.status === 'running'
            ? cyan
            : event.status === 'queued'
              ? dim
              : red;
      const error = event.error ? `: ${event.error.code}: ${event.error.message}` : '';
      return paint(bold, paint(colour, `● ${event.status}${error}`));
    }
    case 'attempt': {
      const error = event.error ? `: ${event.error.code}: ${event.error.message}` : '';
      return `  attempt ${event.attempt} (${event.model}) ${event.status}${error}`;
    }
    case 'turn':
      return paint(bold, `━━ turn ${event.turn}: ${event.prompt}`);
    case 'phase':
      return paint(
        cyan,
        `▸ ${event.phase}${event.try && event.try > 1 ? ` (try ${event.try})` : ''}`,
      );
    case 'output':
      return indent(event.text, paint);
    case 'command':
      return `  [${event.phase}] $ ${event.command}  ${exitMark(event.exitCode, paint)} ${paint(dim, seconds(event.durationMs))}${event.timedOut ? paint(red, ' timed out') : ''}`;
    case 'assistant_message':
      return `${paint(yellow, 'assistant:')} ${event.text}`;
    case 'reasoning':
    case 'usage':
      return null;
    case 'tool_call':
      // The plan event that follows says the same thing, readably.
      return event.name === 'update_plan' ? null : `  ${describeCall(event.name, event.arguments)}`;
    case 'tool_output': {
      if (event.name === 'update_plan' && event.ok) return null;
      const verdict =
        typeof event.exitCode === 'number'
          ? exitMark(event.exitCode, paint)
          : event.ok
            ? paint(green, 'ok')
            : paint(red, 'failed');
      const head = `  ↳ ${event.name} ${verdict} ${paint(dim, seconds(event.durationMs))}`;
      return event.output.trim() === '' ? head : `${head}\n${indent(event.output, paint)}`;
    }
    case 'plan': {
      const mark = { pending: '[ ]', in_progress: '[~]', completed: '[x]' } as const;
      const lines = event.steps.map((s) => `  ${mark[s.status]} ${s.step}`);
      return [
        paint(cyan, `plan${event.explanation ? `: ${event.explanation}` : ''}`),
        ...lines,
      ].join('\n');
    }
    case 'compaction':
      return paint(dim, `  (compacted ${event.summarizedItems} earlier items)`);
    case 'network.blocked':
      return paint(yellow, `  ✗ network: ${event.host}:${event.port} refused (${event.reason})`);
    case 'error':
      return paint(
        red,
        `error${event.phase ? ` in ${event.phase}` : ''}: ${event.code}: ${event.message}`,
      );
  }
}

/** A task as a short human summary (for `status`, and after `submit --follow`). */
export function renderTask(task: Task, options: RenderOptions = {}): string {
  const paint = painter(options.color);
  const lines = [
    `${paint(bold, task.id)}  ${task.status}${task.status === 'running' && task.phase ? ` (${task.phase})` : ''}`,
    `  repo     ${task.repo.url}${task.repo.ref ? ` @ ${task.repo.ref}` : ''}`,
    `  base     ${task.baseCommit ?? '—'}`,
    `  created  ${task.createdAt}${task.finishedAt ? `, finished ${task.finishedAt}` : ''}`,
  ];
  if (task.result) {
    const r = task.result;
    lines.push(
      `  changes  ${r.files.length} files, +${r.additions} -${r.deletions} (${r.patchBytes} bytes of patch)`,
    );
    if (r.verify)
      lines.push(
        `  verify   ${r.verify.passed ? paint(green, 'passed') : paint(red, 'failed')} (${r.verify.command}, ${exitMark(r.verify.exitCode, paint)})`,
      );
    if (r.summary) lines.push(`  summary  ${r.summary.split('\n')[0] ?? ''}`);
  }
  lines.push(
    `  usage    ${task.usage.modelCalls} model calls, ${task.usage.toolCalls} tool calls, ${task.usage.inputTokens + task.usage.outputTokens} tokens`,
  );
  if (task.error) lines.push(paint(red, `  error    ${task.error.code}: ${task.error.message}`));
  if (task.turns.length > 1) {
    lines.push('  turns');
    for (const turn of task.turns) lines.push(`    ${renderTurn(turn, paint)}`);
  }
  return lines.join('\n');
}

/** One line per turn for `status`: number, status, how it started, changes, the prompt's start. */
function renderTurn(turn: Task['turns'][number], paint: Paint): string {
  const prompt = turn.prompt.replace(/\s+/g, ' ');
  const changes = turn.result
    ? `${turn.result.files.length} files +${turn.result.additions} -${turn.result.deletions}`
    : '—';
  return [
    `${turn.n}.`,
    turn.status.padEnd(9),
    turn.warm === true ? 'warm' : turn.warm === false ? 'cold' : '    ',
    changes.padEnd(18),
    turn.error ? paint(red, `${turn.error.code} `) : '',
    prompt.length > 50 ? `${prompt.slice(0, 47)}...` : prompt,
  ].join(' ');
}

/** One row per task for `list`: id, status, age-free timestamp, repo and the prompt's start. */
export function renderTaskRow(task: Task): string {
  const prompt = task.prompt.replace(/\s+/g, ' ');
  return [
    task.id,
    `${task.status}${task.status === 'running' && task.phase ? `/${task.phase}` : ''}`.padEnd(18),
    task.createdAt,
    task.repo.url,
    prompt.length > 60 ? `${prompt.slice(0, 57)}...` : prompt,
  ].join('  ');
}

/** One line per attempt for `attempts`; `*` marks the chosen one. */
export function renderAttempts(view: {
  turn: number;
  chosen: number | null;
  attempts: Attempt[];
}): string {
  const lines = [`turn ${view.turn}`];
  for (const a of view.attempts) {
    const verify =
      a.result?.verify == null
        ? 'no verify'
        : a.result.verify.passed
          ? 'verify passed'
          : 'verify failed';
    const size = a.result
      ? `${a.result.files.length} files, ${a.result.patchBytes} bytes`
      : 'no patch';
    const tokens = a.usage.inputTokens + a.usage.outputTokens;
    lines.push(
      [
        `${a.n === view.chosen ? '*' : ' '} ${a.n}.`,
        a.status.padEnd(9),
        a.model,
        `· ${verify} · ${size} · ${tokens} tokens`,
        a.error ? `· ${a.error.code}` : '',
      ]
        .filter((part) => part !== '')
        .join(' '),
    );
  }
  return lines.join('\n');
}
