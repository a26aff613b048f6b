import { describe, expect, it } from 'vitest';
import { cliTurns, promptWithHistory } from './history.js';

describe('promptWithHistory', () => {
  it('leaves a first turn as written', () => {
    expect(promptWithHistory('Fix the bug.', [])).toBe('Fix the bug.');
  });

  it("puts the request first, then the earlier requests and the agent's closing words", () => {
    const prompt = promptWithHistory('Now rename it.', [
      { type: 'cli_turn', prompt: 'Fix the bug.', summary: 'Fixed in parse.js.' },
      { type: 'cli_turn', prompt: 'Add a test.', summary: null },
    ]);
    expect(prompt).toBe(
      [
        'Now rename it.',
        '',
        '---',
        'This continues earlier work on this task; the working tree already holds it. The earlier requests, oldest first:',
        '',
        'Request 1: Fix the bug.',
        'What you said when done: Fixed in parse.js.',
        '',
        'Request 2: Add a test.',
        'What you said when done: (nothing)',
      ].join('\n'),
    );
  });

  it('cuts long texts, and keeps the latest turns only', () => {
    const long = 'x'.repeat(10_000);
    expect(promptWithHistory('go', [{ type: 'cli_turn', prompt: long, summary: null }])).toContain(
      `${'x'.repeat(4000)} […]`,
    );
    const many = Array.from({ length: 30 }, (_, i) => ({
      type: 'cli_turn',
      prompt: `p${i}`,
      summary: null,
    }));
    expect(cliTurns(many).map((t) => t.prompt)).toEqual(many.slice(10).map((t) => t.prompt));
  });
});

describe('cliTurns', () => {
  it("reads only a CLI agent's turns from a history (Patchbay's own loop leaves other items)", () => {
    expect(
      cliTurns([
        { type: 'message', role: 'user', content: 'hi' },
        { type: 'cli_turn', prompt: 'a', summary: 'b' },
        null,
        'text',
      ]),
    ).toEqual([{ type: 'cli_turn', prompt: 'a', summary: 'b' }]);
    expect(cliTurns(undefined)).toEqual([]);
  });
});
