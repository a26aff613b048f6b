import { describe, expect, it } from 'vitest';

import { ApplyPatchError } from './errors.js';
import { parsePatch } from './parser.js';

function patch(...body: string[]): string {
  return ['*** Begin Patch', ...body, '*** End Patch'].join('\n');
}

function parseError(text: string): ApplyPatchError {
  try {
    parsePatch(text);
  } catch (err) {
    if (err instanceof ApplyPatchError) return err;
    throw err;
  }
  throw new Error('expected the patch to be refused');
}

describe('parsePatch', () => {
  it('parses add, delete and update hunks with a move and a context header', () => {
    const parsed = parsePatch(
      patch(
        '*** Add File: path/add.py',
        '+abc',
        '+def',
        '*** Delete File: path/delete.py',
        '*** Update File: path/update.py',
        '*** Move to: path/update2.py',
        '@@ def f():',
        '-    pass',
        '+    return 123',
      ),
    );
    expect(parsed.hunks).toEqual([
      { type: 'add', path: 'path/add.py', contents: 'abc\ndef\n' },
      { type: 'delete', path: 'path/delete.py' },
      {
        type: 'update',
        path: 'path/update.py',
        movePath: 'path/update2.py',
        chunks: [
          {
            changeContext: 'def f():',
            oldLines: ['    pass'],
            newLines: ['    return 123'],
            contextLineIndices: [],
            isEndOfFile: false,
          },
        ],
      },
    ]);
  });

  it('records context lines on both sides with their indices', () => {
    const { hunks } = parsePatch(
      patch(
        '*** Update File: f',
        '@@ change_context',
        '',
        ' context',
        '-remove',
        '+add',
        ' context2',
      ),
    );
    expect(hunks[0]).toEqual({
      type: 'update',
      path: 'f',
      chunks: [
        {
          changeContext: 'change_context',
          oldLines: ['', 'context', 'remove', 'context2'],
          newLines: ['', 'context', 'add', 'context2'],
          contextLineIndices: [
            [0, 0],
            [1, 1],
            [3, 3],
          ],
          isEndOfFile: false,
        },
      ],
    });
  });

  it('splits an update into chunks at each @@ line and marks *** End of File', () => {
    const { hunks } = parsePatch(
      patch(
        '*** Update File: multi.txt',
        '@@',
        '-line2',
        '+changed2',
        '@@',
        '-line4',
        '+changed4',
        '*** End of File',
      ),
    );
    const update = hunks[0];
    expect(update?.type === 'update' && update.chunks).toEqual([
      { oldLines: ['line2'], newLines: ['changed2'], contextLineIndices: [], isEndOfFile: false },
      { oldLines: ['line4'], newLines: ['changed4'], contextLineIndices: [], isEndOfFile: true },
    ]);
  });

  it('accepts a first chunk without an @@ line', () => {
    const { hunks } = parsePatch(patch('*** Update File: file2.py', ' import foo', '+bar'));
    expect(hunks).toEqual([
      {
        type: 'update',
        path: 'file2.py',
        chunks: [
          {
            oldLines: ['import foo'],
            newLines: ['import foo', 'bar'],
            contextLineIndices: [[0, 0]],
            isEndOfFile: false,
          },
        ],
      },
    ]);
  });

  it('ends an update hunk at the next hunk header', () => {
    const { hunks } = parsePatch(
      patch('*** Update File: file.py', '@@', '+line', '*** Add File: other.py', '+content'),
    );
    expect(hunks.map((h) => h.type)).toEqual(['update', 'add']);
    expect(hunks[1]).toEqual({ type: 'add', path: 'other.py', contents: 'content\n' });
  });

  it('skips blank lines between an update header and its first chunk', () => {
    const { hunks } = parsePatch(patch('*** Update File: f', '', '   ', '@@', '-a', '+b'));
    expect(hunks[0]?.type === 'update' && hunks[0].chunks).toHaveLength(1);
  });

  it('parses an add hunk without lines as an empty file', () => {
    expect(parsePatch(patch('*** Add File: empty.txt')).hunks).toEqual([
      { type: 'add', path: 'empty.txt', contents: '' },
    ]);
  });

  it('parses a patch without hunks (the applier refuses it)', () => {
    expect(parsePatch(patch()).hunks).toEqual([]);
  });

  it('tolerates whitespace around the begin, end and hunk-header lines', () => {
    const { hunks } = parsePatch(
      ' *** Begin Patch \n  *** Update File: foo.txt\n@@\n-old\n+new\n *** End Patch \n',
    );
    expect(hunks).toEqual([
      {
        type: 'update',
        path: 'foo.txt',
        chunks: [
          { oldLines: ['old'], newLines: ['new'], contextLineIndices: [], isEndOfFile: false },
        ],
      },
    ]);
  });

  it('accepts CRLF line breaks in the patch', () => {
    const { hunks } = parsePatch(
      '*** Begin Patch\r\n*** Add File: a.txt\r\n+hi\r\n*** End Patch\r\n',
    );
    expect(hunks).toEqual([{ type: 'add', path: 'a.txt', contents: 'hi\n' }]);
  });

  it.each([`<<EOF`, `<<'EOF'`, `<<"EOF"`])('unwraps a patch inside a %s heredoc', (opener) => {
    const inner = patch('*** Update File: file2.py', ' import foo', '+bar');
    const parsed = parsePatch(`${opener}\n${inner}\nEOF\n`);
    expect(parsed.patch).toBe(inner);
    expect(parsed.hunks).toHaveLength(1);
  });

  it('refuses a heredoc with mismatched quotes', () => {
    const inner = patch('*** Add File: a', '+x');
    expect(parseError(`<<"EOF'\n${inner}\nEOF\n`).message).toBe(
      "Invalid patch: The first line of the patch must be '*** Begin Patch'",
    );
  });

  it('reports the inner error of a heredoc without *** End Patch', () => {
    expect(parseError('<<EOF\n*** Begin Patch\n*** Update File: file2.py\nEOF\n').message).toBe(
      "Invalid patch: The last line of the patch must be '*** End Patch'",
    );
  });

  it('refuses text that does not start with *** Begin Patch', () => {
    const err = parseError('bad');
    expect(err.code).toBe('invalid_patch');
    expect(err.message).toBe(
      "Invalid patch: The first line of the patch must be '*** Begin Patch'",
    );
  });

  it('refuses a patch without *** End Patch', () => {
    expect(parseError('*** Begin Patch\n*** Add File: a\n+x').message).toBe(
      "Invalid patch: The last line of the patch must be '*** End Patch'",
    );
  });

  it('refuses empty input', () => {
    expect(parseError('  \n ').code).toBe('invalid_patch');
  });

  it('refuses an unknown hunk header, naming the valid ones and the line', () => {
    const err = parseError(patch('*** Frobnicate File: foo'));
    expect(err.code).toBe('invalid_hunk');
    expect(err.lineNumber).toBe(2);
    expect(err.message).toBe(
      "Invalid patch hunk on line 2: '*** Frobnicate File: foo' is not a valid hunk header. " +
        "Valid hunk headers: '*** Add File: {path}', '*** Delete File: {path}', '*** Update File: {path}'",
    );
  });

  it('counts lines across hunks when reporting a bad header', () => {
    const err = parseError(patch('*** Add File: a', '+1', '+2', 'garbage'));
    expect(err.lineNumber).toBe(5);
  });

  it('refuses an update hunk without chunks', () => {
    const err = parseError(patch('*** Update File: test.py'));
    expect(err.code).toBe('invalid_hunk');
    expect(err.message).toBe(
      "Invalid patch hunk on line 2: Update file hunk for path 'test.py' is empty",
    );
  });

  it('refuses an @@ line with nothing after it', () => {
    const err = parseError(patch('*** Update File: a', '@@ ctx', '-x', '@@'));
    expect(err.message).toBe(
      'Invalid patch hunk on line 6: Update hunk does not contain any lines',
    );
  });

  it('refuses a chunk that is only *** End of File', () => {
    const err = parseError(patch('*** Update File: a', '@@', '*** End of File'));
    expect(err.message).toBe(
      'Invalid patch hunk on line 4: Update hunk does not contain any lines',
    );
  });

  it('refuses a line that is not context, addition or removal', () => {
    const err = parseError(patch('*** Update File: a', '@@', 'bad'));
    expect(err.message).toBe(
      "Invalid patch hunk on line 4: Unexpected line found in update hunk: 'bad'. " +
        "Every line should start with ' ' (context line), '+' (added line), or '-' (removed line)",
    );
  });

  it('refuses a second chunk without an @@ line', () => {
    // `@` ends the first chunk; a chunk that starts with neither `@@` nor a marker line is bad.
    const err = parseError(patch('*** Update File: a', '@@', '-x', '@bad'));
    expect(err.message).toBe(
      "Invalid patch hunk on line 5: Expected update hunk to start with a @@ context marker, got: '@bad'",
    );
  });
});
