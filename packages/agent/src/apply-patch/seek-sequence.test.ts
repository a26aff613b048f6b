import { describe, expect, it } from 'vitest';

import { normalisePunctuation, seekSequence } from './seek-sequence.js';
import { trim, trimEnd } from './whitespace.js';

describe('seekSequence', () => {
  it('finds an exact sequence', () => {
    expect(seekSequence(['foo', 'bar', 'baz'], ['bar', 'baz'], 0, false)).toBe(1);
  });

  it('ignores trailing whitespace when no exact match exists', () => {
    expect(seekSequence(['foo   ', 'bar\t\t'], ['foo', 'bar'], 0, false)).toBe(0);
  });

  it('ignores leading and trailing whitespace when nothing closer matches', () => {
    expect(seekSequence(['    foo   ', '   bar\t'], ['foo', 'bar'], 0, false)).toBe(0);
  });

  it('matches typographic dashes, quotes and spaces against ASCII', () => {
    const lines = ['const s = \u201Chello\u201D \u2014 it\u2019s\u00A0fine;'];
    expect(seekSequence(lines, [`const s = "hello" - it's fine;`], 0, false)).toBe(0);
  });

  it('prefers a stricter match later in the file over a looser one earlier', () => {
    expect(seekSequence(['x ', 'y', 'x'], ['x'], 0, false)).toBe(2);
  });

  it('searches from start onwards', () => {
    expect(seekSequence(['a', 'b', 'a'], ['a'], 1, false)).toBe(2);
    expect(seekSequence(['a', 'b'], ['a'], 1, false)).toBeUndefined();
  });

  it('with eof, only matches the last lines', () => {
    expect(seekSequence(['a', 'b', 'a', 'c'], ['a'], 0, true)).toBeUndefined();
    expect(seekSequence(['a', 'b', 'a'], ['a'], 0, true)).toBe(2);
  });

  it('returns start for an empty pattern', () => {
    expect(seekSequence(['a'], [], 1, false)).toBe(1);
  });

  it('returns undefined for a pattern longer than the file', () => {
    expect(seekSequence(['just one line'], ['too', 'many', 'lines'], 0, false)).toBeUndefined();
  });
});

describe('whitespace', () => {
  it('trims Unicode whitespace the way Rust does, not the way JavaScript does', () => {
    expect(trim('\u0085\u3000 x \u2028')).toBe('x');
    // U+FEFF is not whitespace in Rust: a byte order mark is content.
    expect(trim('\uFEFFx')).toBe('\uFEFFx');
    expect(trimEnd('  x \t')).toBe('  x');
  });

  it('normalises punctuation after trimming', () => {
    expect(normalisePunctuation('  \u2018a\u2019\u2009\u2212 ')).toBe("'a' -");
  });
});
