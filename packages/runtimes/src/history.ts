/**
 * What a CLI agent's turn leaves for the next one: the request and the agent's closing words.
 * A CLI agent starts afresh each turn (its own session stays in the sandbox that ran it), so a
 * follow-up's prompt carries the earlier turns in words.
 */
export interface CliTurn {
  type: 'cli_turn';
  prompt: string;
  summary: string | null;
}

/** Turns at most carried into a follow-up's prompt (the latest ones). */
const MAX_TURNS = 20;
/** Characters at most of one earlier request or summary in the prompt. */
const MAX_CHARS = 4000;

function isCliTurn(item: unknown): item is CliTurn {
  const turn = item as Partial<CliTurn> | null;
  return (
    typeof turn === 'object' &&
    turn !== null &&
    turn.type === 'cli_turn' &&
    typeof turn.prompt === 'string'
  );
}

const cut = (text: string): string =>
  text.length > MAX_CHARS ? `${text.slice(0, MAX_CHARS)} […]` : text;

/** The turns an earlier run left (anything else in the history is not a CLI agent's). */
export function cliTurns(history: readonly unknown[] | undefined): CliTurn[] {
  return (history ?? []).filter(isCliTurn).slice(-MAX_TURNS);
}

/**
 * A follow-up's prompt: the request itself first, then the earlier requests of the task and what
 * the agent said when it finished each, for context. The first turn's prompt is as written.
 */
export function promptWithHistory(prompt: string, earlier: readonly CliTurn[]): string {
  if (earlier.length === 0) return prompt;
  const context = earlier.map((turn, i) =>
    [
      `Request ${i + 1}: ${cut(turn.prompt)}`,
      `What you said when done: ${turn.summary === null ? '(nothing)' : cut(turn.summary)}`,
    ].join('\n'),
  );
  return [
    prompt,
    '',
    '---',
    'This continues earlier work on this task; the working tree already holds it. The earlier requests, oldest first:',
    '',
    context.join('\n\n'),
  ].join('\n');
}
