import { describe, expect, it } from 'vitest';
import { clipExecOutput, clipText, omissionMarker, renderClipped } from './output.js';

/** The kept bytes of a rendering: everything but the marker line. */
function keptBytes(text: string, omitted: number, total: number): number {
  const marker = omissionMarker(omitted, total);
  const [head = '', tail = ''] = text.split(marker);
  // The marker has a line of its own: one line break on each side belongs to it.
  return (
    Buffer.byteLength(head.replace(/\n$/, ''), 'utf8') +
    Buffer.byteLength(tail.replace(/^\n/, ''), 'utf8')
  );
}

describe('renderClipped', () => {
  it('returns output within the limit unchanged', () => {
    const rendered = renderClipped(clipText('hello\nworld\n'), 100);
    expect(rendered).toEqual({ text: 'hello\nworld\n', omittedBytes: 0, totalBytes: 12 });
  });

  it('keeps head and tail and states exactly how many bytes were left out', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    const rendered = renderClipped(clipText(text), 1000);
    const total = Buffer.byteLength(text);
    expect(rendered.totalBytes).toBe(total);
    expect(rendered.text).toContain(omissionMarker(rendered.omittedBytes, total));
    expect(rendered.text.startsWith('line 0\nline 1\n')).toBe(true);
    const [head = '', tail = ''] = rendered.text.split(
      `\n${omissionMarker(rendered.omittedBytes, total)}\n`,
    );
    expect(text.startsWith(`${head}\n`)).toBe(true);
    expect(text.endsWith(`\n${tail}`)).toBe(true);
    expect(rendered.text.endsWith('line 1999')).toBe(true);
    // Kept + omitted add up to the whole, and what is kept fits the limit.
    const kept = keptBytes(rendered.text, rendered.omittedBytes, total);
    expect(kept + rendered.omittedBytes).toBe(total);
    expect(kept).toBeLessThanOrEqual(1000);
    // Cut at line breaks: every kept line is whole.
    for (const line of rendered.text.split('\n')) {
      expect(line === '' || /^line \d+$/.test(line) || line.startsWith('[…')).toBe(true);
    }
  });

  it('counts the bytes the sandbox already dropped in the same marker', () => {
    // The sandbox kept 50 + 50 bytes of 1100 (maxOutputBytes 100): the gap is at byte 50.
    const output = Buffer.concat([Buffer.alloc(50, 'a'), Buffer.alloc(50, 'z')]);
    const clipped = clipExecOutput(output, 1000, 100);
    const whole = renderClipped(clipped, 200);
    expect(whole.text).toBe(`${'a'.repeat(50)}\n${omissionMarker(1000, 1100)}\n${'z'.repeat(50)}`);
    const cut = renderClipped(clipped, 40);
    expect(cut.omittedBytes).toBe(1100 - 40);
    expect(cut.text).toBe(`${'a'.repeat(20)}\n${omissionMarker(1060, 1100)}\n${'z'.repeat(20)}`);
  });

  it('never splits a UTF-8 character', () => {
    const text = 'é'.repeat(1000); // 2 bytes each
    for (const limit of [99, 100, 101, 333]) {
      const rendered = renderClipped(clipText(text), limit);
      expect(rendered.text).not.toContain('\uFFFD');
      const kept = keptBytes(rendered.text, rendered.omittedBytes, 2000);
      expect(kept + rendered.omittedBytes).toBe(2000);
    }
    // A sandbox cut in the middle of a character: the partial bytes count as omitted.
    const buf = Buffer.from('€€€€', 'utf8'); // 3 bytes each
    const clipped = clipExecOutput(Buffer.concat([buf.subarray(0, 4), buf.subarray(8)]), 4, 8);
    const rendered = renderClipped(clipped, 100);
    expect(rendered.text).not.toContain('\uFFFD');
    expect(rendered.text).toBe(`€\n${omissionMarker(6, 12)}\n€`);
  });
});
