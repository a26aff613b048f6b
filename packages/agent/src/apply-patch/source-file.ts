/** Replace `oldLength` lines from `start` with `lines` (indices into the original file). */
export interface Replacement {
  start: number;
  oldLength: number;
  lines: string[];
}

type LineEnding = '\n' | '\r\n' | '\r';

interface SourceLine {
  text: string;
  /** Undefined only for a last line without a line break. */
  ending: LineEnding | undefined;
}

/**
 * A text file as lines that remember their own line ending, so an update rewrites only the lines
 * it changes: a CRLF file stays CRLF, and in a mixed file the untouched lines keep theirs. New
 * lines take the file's first line ending (LF when it has none), as rustfmt and Ruff detect it
 * and as the reference applier does. A lone CR counts as a line break too, as the reference's
 * mixed-endings scenario requires.
 */
export class SourceFile {
  private lines: SourceLine[];
  private readonly preferredEnding: LineEnding;

  private constructor(lines: SourceLine[], preferredEnding: LineEnding) {
    this.lines = lines;
    this.preferredEnding = preferredEnding;
  }

  static parse(contents: string): SourceFile {
    const lines: SourceLine[] = [];
    let preferred: LineEnding | undefined;
    let lineStart = 0;
    for (let i = 0; i < contents.length; i++) {
      const c = contents[i];
      if (c !== '\n' && c !== '\r') continue;
      const ending: LineEnding = c === '\r' && contents[i + 1] === '\n' ? '\r\n' : c;
      preferred ??= ending;
      lines.push({ text: contents.slice(lineStart, i), ending });
      i += ending.length - 1;
      lineStart = i + 1;
    }
    if (lineStart < contents.length) {
      lines.push({ text: contents.slice(lineStart), ending: undefined });
    }
    return new SourceFile(lines, preferred ?? '\n');
  }

  /** The lines without their endings. */
  lineTexts(): string[] {
    return this.lines.map((line) => line.text);
  }

  /**
   * Applies replacements sorted by `start` that do not overlap. Every line ends with a line
   * break afterwards: updates have always left a trailing newline, and a last line without one
   * may no longer be last.
   * @throws {RangeError} when two replacements overlap.
   */
  applyReplacements(replacements: readonly Replacement[]): void {
    const result: SourceLine[] = [];
    let next = 0;
    for (const { start, oldLength, lines } of replacements) {
      if (start < next) {
        throw new RangeError(`replacement at line ${start + 1} overlaps the one before it`);
      }
      result.push(...this.lines.slice(next, start));
      result.push(...lines.map((text) => ({ text, ending: this.preferredEnding })));
      next = start + oldLength;
    }
    result.push(...this.lines.slice(next));
    this.lines = result.map((line) => ({
      text: line.text,
      ending: line.ending ?? this.preferredEnding,
    }));
  }

  toString(): string {
    return this.lines.map((line) => line.text + (line.ending ?? '')).join('');
  }
}
