import { trim, trimEnd } from './whitespace.js';

// Typographic punctuation a model tends to type as ASCII (or the other way round), mapped to
// ASCII so a patch still finds its context. Same table as the reference's `seek_sequence.rs`.
const PUNCTUATION: ReadonlyMap<string, string> = new Map([
  ...['\u2010', '\u2011', '\u2012', '\u2013', '\u2014', '\u2015', '\u2212'].map(
    (c) => [c, '-'] as const,
  ),
  ...['\u2018', '\u2019', '\u201A', '\u201B'].map((c) => [c, "'"] as const),
  ...['\u201C', '\u201D', '\u201E', '\u201F'].map((c) => [c, '"'] as const),
  ...[
    '\u00A0',
    '\u2002',
    '\u2003',
    '\u2004',
    '\u2005',
    '\u2006',
    '\u2007',
    '\u2008',
    '\u2009',
    '\u200A',
    '\u202F',
    '\u205F',
    '\u3000',
  ].map((c) => [c, ' '] as const),
]);
const PUNCTUATION_PATTERN = new RegExp(`[${[...PUNCTUATION.keys()].join('')}]`, 'g');

/** Trimmed, with common Unicode dashes, quotes and spaces replaced by their ASCII forms. */
export function normalisePunctuation(s: string): string {
  return trim(s).replace(PUNCTUATION_PATTERN, (c) => PUNCTUATION.get(c) ?? c);
}

const PASSES: readonly ((s: string) => string)[] = [(s) => s, trimEnd, trim, normalisePunctuation];

/**
 * Index of the first place at or after `start` where `pattern` occurs in `lines`, or undefined.
 *
 * Tries each comparison over the whole range before the next, looser one: exact, then ignoring
 * trailing whitespace, then ignoring surrounding whitespace, then with punctuation normalised.
 * With `eof`, only the end of the file is tried (the pattern must be the last lines), as in the
 * reference. An empty pattern matches at `start`.
 */
export function seekSequence(
  lines: readonly string[],
  pattern: readonly string[],
  start: number,
  eof: boolean,
): number | undefined {
  if (pattern.length === 0) return start;
  if (pattern.length > lines.length) return undefined;
  const last = lines.length - pattern.length;
  const first = eof ? last : start;
  if (first > last) return undefined;
  for (const normalise of PASSES) {
    const wanted = pattern.map(normalise);
    const candidates = lines.map(normalise);
    for (let i = first; i <= last; i++) {
      if (wanted.every((p, j) => candidates[i + j] === p)) return i;
    }
  }
  return undefined;
}
