import { describe, expect, it } from 'vitest';

import { applyChunks, applyPatch, formatSummary } from './apply.js';
import { ApplyPatchError, type ApplyPatchErrorCode } from './errors.js';
import type { PatchFileSystem } from './file-system.js';
import { MemoryPatchFileSystem } from './memory-file-system.js';
import { parsePatch, type UpdateFileChunk } from './parser.js';

function patch(...body: string[]): string {
  return ['*** Begin Patch', ...body, '*** End Patch'].join('\n');
}

async function refusal(
  text: string,
  fs: PatchFileSystem,
  code: ApplyPatchErrorCode,
): Promise<ApplyPatchError> {
  const err: unknown = await applyPatch(text, fs).then(
    () => new Error('expected the patch to be refused'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplyPatchError);
  expect((err as ApplyPatchError).code).toBe(code);
  return err as ApplyPatchError;
}

function chunksOf(text: string): UpdateFileChunk[] {
  const hunk = parsePatch(text).hunks[0];
  if (hunk?.type !== 'update') throw new Error('expected an update hunk');
  return hunk.chunks;
}

describe('applyPatch', () => {
  it('adds a file, creating its directories, and reports it', async () => {
    const fs = new MemoryPatchFileSystem();
    const result = await applyPatch(
      patch('*** Add File: nested/dir/bar.md', '+This is a new file'),
      fs,
    );
    expect(fs.snapshot()).toEqual({ 'nested/dir/bar.md': 'This is a new file\n' });
    expect(result).toEqual({
      added: ['nested/dir/bar.md'],
      modified: [],
      deleted: [],
      moved: [],
      summary: 'Success. Updated the following files:\nA nested/dir/bar.md\n',
    });
  });

  it('overwrites an existing file on add', async () => {
    const fs = new MemoryPatchFileSystem({ 'duplicate.txt': 'old content\n' });
    await applyPatch(patch('*** Add File: duplicate.txt', '+new content'), fs);
    expect(fs.snapshot()).toEqual({ 'duplicate.txt': 'new content\n' });
  });

  it('applies several operations in one patch and lists them A, M, D', async () => {
    const fs = new MemoryPatchFileSystem({
      'delete.txt': 'obsolete\n',
      'modify.txt': 'line1\nline2\n',
    });
    const result = await applyPatch(
      patch(
        '*** Add File: nested/new.txt',
        '+created',
        '*** Delete File: delete.txt',
        '*** Update File: modify.txt',
        '@@',
        '-line2',
        '+changed',
      ),
      fs,
    );
    expect(fs.snapshot()).toEqual({
      'modify.txt': 'line1\nchanged\n',
      'nested/new.txt': 'created\n',
    });
    expect(result.summary).toBe(
      'Success. Updated the following files:\nA nested/new.txt\nM modify.txt\nD delete.txt\n',
    );
  });

  it('applies several chunks to one file and lists it once', async () => {
    const fs = new MemoryPatchFileSystem({ 'multi.txt': 'line1\nline2\nline3\nline4\n' });
    const result = await applyPatch(
      patch('*** Update File: multi.txt', '@@', '-line2', '+changed2', '@@', '-line4', '+changed4'),
      fs,
    );
    expect(fs.snapshot()['multi.txt']).toBe('line1\nchanged2\nline3\nchanged4\n');
    expect(result.modified).toEqual(['multi.txt']);
  });

  it('moves an updated file to a new directory, leaving the old directory in place', async () => {
    const fs = new MemoryPatchFileSystem({
      'old/name.txt': 'old content\n',
      'old/other.txt': 'x\n',
    });
    const result = await applyPatch(
      patch(
        '*** Update File: old/name.txt',
        '*** Move to: renamed/dir/name.txt',
        '@@',
        '-old content',
        '+new content',
      ),
      fs,
    );
    expect(fs.snapshot()).toEqual({
      'old/other.txt': 'x\n',
      'renamed/dir/name.txt': 'new content\n',
    });
    expect(result.modified).toEqual(['renamed/dir/name.txt']);
    expect(result.moved).toEqual([{ from: 'old/name.txt', to: 'renamed/dir/name.txt' }]);
    expect(result.summary).toBe('Success. Updated the following files:\nM renamed/dir/name.txt\n');
  });

  it('overwrites the destination of a move', async () => {
    const fs = new MemoryPatchFileSystem({
      'old/name.txt': 'from\n',
      'renamed/dir/name.txt': 'existing\n',
    });
    await applyPatch(
      patch(
        '*** Update File: old/name.txt',
        '*** Move to: renamed/dir/name.txt',
        '@@',
        '-from',
        '+new',
      ),
      fs,
    );
    expect(fs.snapshot()).toEqual({ 'renamed/dir/name.txt': 'new\n' });
  });

  it('treats a move onto the same file as an update instead of deleting it', async () => {
    const fs = new MemoryPatchFileSystem({ 'a.txt': 'one\n' });
    await applyPatch(
      patch('*** Update File: a.txt', '*** Move to: ./a.txt', '@@', '-one', '+two'),
      fs,
    );
    expect(fs.snapshot()).toEqual({ 'a.txt': 'two\n' });
  });

  it('deletes a file', async () => {
    const fs = new MemoryPatchFileSystem({ 'keep.txt': 'keep\n', 'obsolete.txt': 'obsolete\n' });
    const result = await applyPatch(patch('*** Delete File: obsolete.txt'), fs);
    expect(fs.snapshot()).toEqual({ 'keep.txt': 'keep\n' });
    expect(result.summary).toBe('Success. Updated the following files:\nD obsolete.txt\n');
  });

  it('removes only the lines marked - when the rest is context', async () => {
    const fs = new MemoryPatchFileSystem({ 'lines.txt': 'line1\nline2\nline3\n' });
    await applyPatch(patch('*** Update File: lines.txt', '@@', ' line1', '-line2', ' line3'), fs);
    expect(fs.snapshot()['lines.txt']).toBe('line1\nline3\n');
  });

  it('appends the lines of a chunk without old lines at the end of the file', async () => {
    const fs = new MemoryPatchFileSystem({ 'input.txt': 'line1\nline2\n' });
    await applyPatch(
      patch('*** Update File: input.txt', '@@', '+added line 1', '+added line 2'),
      fs,
    );
    expect(fs.snapshot()['input.txt']).toBe('line1\nline2\nadded line 1\nadded line 2\n');
  });

  it('ends an updated file with a newline even when the original had none', async () => {
    const fs = new MemoryPatchFileSystem({ 'no_newline.txt': 'no newline at end' });
    await applyPatch(
      patch(
        '*** Update File: no_newline.txt',
        '@@',
        '-no newline at end',
        '+first line',
        '+second line',
      ),
      fs,
    );
    expect(fs.snapshot()['no_newline.txt']).toBe('first line\nsecond line\n');
  });

  it('anchors a chunk marked *** End of File at the end of the file', async () => {
    const fs = new MemoryPatchFileSystem({ 'tail.txt': 'x\nfirst\nsecond\nx\nfirst\nsecond\n' });
    await applyPatch(
      patch(
        '*** Update File: tail.txt',
        '@@',
        ' first',
        '-second',
        '+second updated',
        '*** End of File',
      ),
      fs,
    );
    expect(fs.snapshot()['tail.txt']).toBe('x\nfirst\nsecond\nx\nfirst\nsecond updated\n');
  });

  it('finds a chunk after its @@ context line', async () => {
    const fs = new MemoryPatchFileSystem({
      'a.py': 'def f():\n    pass\n\ndef g():\n    pass\n',
    });
    await applyPatch(
      patch('*** Update File: a.py', '@@ def g():', '-    pass', '+    return 1'),
      fs,
    );
    expect(fs.snapshot()['a.py']).toBe('def f():\n    pass\n\ndef g():\n    return 1\n');
  });

  it('keeps Unicode text intact', async () => {
    const fs = new MemoryPatchFileSystem({ 'foo.txt': 'line1\nnaïve café\nline3\n' });
    await applyPatch(
      patch('*** Update File: foo.txt', '@@', ' line1', '-naïve café', '+naïve café ✅'),
      fs,
    );
    expect(fs.snapshot()['foo.txt']).toBe('line1\nnaïve café ✅\nline3\n');
  });

  describe('line endings', () => {
    it('keeps a CRLF file CRLF, new lines included', async () => {
      const fs = new MemoryPatchFileSystem({ 'lines.txt': 'one\r\ntwo\r\nthree\r\n' });
      await applyPatch(
        patch('*** Update File: lines.txt', '@@', '-one', '+ONE', ' two', '+between', ' three'),
        fs,
      );
      expect(fs.snapshot()['lines.txt']).toBe('ONE\r\ntwo\r\nbetween\r\nthree\r\n');
    });

    it('keeps each line ending of a mixed file and gives new lines the first one', async () => {
      const fs = new MemoryPatchFileSystem({ 'lines.txt': 'one\r\ntwo\rthree\nfour\r\n' });
      await applyPatch(
        patch('*** Update File: lines.txt', '@@', ' one', ' two', '-three', '+THREE', ' four'),
        fs,
      );
      expect(fs.snapshot()['lines.txt']).toBe('one\r\ntwo\rTHREE\r\nfour\r\n');
    });

    it('ends a CRLF file without a final newline with CRLF', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.txt': 'a\r\nb' });
      await applyPatch(patch('*** Update File: a.txt', '@@', ' a', '+c'), fs);
      expect(fs.snapshot()['a.txt']).toBe('a\r\nc\r\nb\r\n');
    });

    it('writes added files with LF', async () => {
      const fs = new MemoryPatchFileSystem();
      await applyPatch(
        '*** Begin Patch\r\n*** Add File: a.txt\r\n+x\r\n+y\r\n*** End Patch\r\n',
        fs,
      );
      expect(fs.snapshot()['a.txt']).toBe('x\ny\n');
    });
  });

  describe('fuzzy context', () => {
    it('matches context that differs in trailing whitespace and keeps the file line as it is', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.txt': 'keep   \nold\n' });
      await applyPatch(patch('*** Update File: a.txt', '@@', ' keep', '-old', '+new'), fs);
      expect(fs.snapshot()['a.txt']).toBe('keep   \nnew\n');
    });

    it('matches context that differs in indentation', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.py': '\tif x:\n\t\treturn 1\n' });
      await applyPatch(
        patch('*** Update File: a.py', '@@', '    if x:', '-        return 1', '+        return 2'),
        fs,
      );
      expect(fs.snapshot()['a.py']).toBe('\tif x:\n        return 2\n');
    });

    it('matches typographic punctuation written as ASCII in the patch', async () => {
      const fs = new MemoryPatchFileSystem({
        'a.md': 'He said \u201Chi\u201D \u2014 twice.\nend\n',
      });
      await applyPatch(
        patch('*** Update File: a.md', '@@', ' He said "hi" - twice.', '-end', '+END'),
        fs,
      );
      expect(fs.snapshot()['a.md']).toBe('He said \u201Chi\u201D \u2014 twice.\nEND\n');
    });

    it('tolerates a trailing empty context line standing for the final newline', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.txt': 'a\nb\n' });
      await applyPatch(patch('*** Update File: a.txt', '@@', ' a', '-b', '+c', ''), fs);
      expect(fs.snapshot()['a.txt']).toBe('a\nc\n');
    });
  });

  describe('refusals', () => {
    it('refuses a patch without hunks and changes nothing', async () => {
      const fs = new MemoryPatchFileSystem({ 'foo.txt': 'stable\n' });
      const err = await refusal(patch(), fs, 'no_changes');
      expect(err.message).toBe('No files were modified.');
      expect(fs.snapshot()).toEqual({ 'foo.txt': 'stable\n' });
    });

    it('refuses an update whose lines are not in the file', async () => {
      const fs = new MemoryPatchFileSystem({ 'modify.txt': 'line1\nline2\n' });
      const err = await refusal(
        patch('*** Update File: modify.txt', '@@', '-missing', '+changed'),
        fs,
        'context_not_found',
      );
      expect(err.message).toBe('Failed to find expected lines in modify.txt:\nmissing');
      expect(fs.snapshot()).toEqual({ 'modify.txt': 'line1\nline2\n' });
    });

    it('refuses an update whose @@ context is not in the file', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.py': 'def f():\n    pass\n' });
      const err = await refusal(
        patch('*** Update File: a.py', '@@ def g():', '-    pass', '+    return'),
        fs,
        'context_not_found',
      );
      expect(err.message).toBe("Failed to find context 'def g():' in a.py");
    });

    it('refuses to update a file that does not exist', async () => {
      const fs = new MemoryPatchFileSystem({ 'foo.txt': 'stable\n' });
      const err = await refusal(
        patch('*** Update File: missing.txt', '@@', '-old', '+new'),
        fs,
        'not_found',
      );
      expect(err.message).toBe(
        'Failed to read file to update missing.txt: No such file or directory',
      );
      expect(fs.snapshot()).toEqual({ 'foo.txt': 'stable\n' });
    });

    it('refuses to delete a file that does not exist', async () => {
      const fs = new MemoryPatchFileSystem({ 'foo.txt': 'stable\n' });
      const err = await refusal(patch('*** Delete File: missing.txt'), fs, 'not_found');
      expect(err.message).toBe('Failed to delete file missing.txt: No such file or directory');
    });

    it('refuses to delete a directory', async () => {
      const fs = new MemoryPatchFileSystem({ 'dir/foo.txt': 'stable\n' });
      const err = await refusal(patch('*** Delete File: dir'), fs, 'is_directory');
      expect(err.message).toBe('Failed to delete file dir: Is a directory');
      expect(fs.snapshot()).toEqual({ 'dir/foo.txt': 'stable\n' });
    });

    it('refuses to update a directory or to add a file over one', async () => {
      const fs = new MemoryPatchFileSystem({ 'dir/foo.txt': 'stable\n' });
      await refusal(patch('*** Update File: dir', '@@', '-a', '+b'), fs, 'is_directory');
      await refusal(patch('*** Add File: dir', '+a'), fs, 'is_directory');
    });

    it('refuses a bad hunk header before changing anything', async () => {
      const fs = new MemoryPatchFileSystem({ 'foo.txt': 'stable\n' });
      await refusal(
        patch('*** Add File: new.txt', '+x', '*** Frobnicate File: foo'),
        fs,
        'invalid_hunk',
      );
      expect(fs.snapshot()).toEqual({ 'foo.txt': 'stable\n' });
    });

    it('refuses an update hunk without chunks', async () => {
      const fs = new MemoryPatchFileSystem({ 'foo.txt': 'stable\n' });
      await refusal(patch('*** Update File: foo.txt'), fs, 'invalid_hunk');
    });

    it('keeps the changes of hunks before a failing one and reports them', async () => {
      const fs = new MemoryPatchFileSystem();
      const err = await refusal(
        patch(
          '*** Add File: created.txt',
          '+hello',
          '*** Update File: missing.txt',
          '@@',
          '-old',
          '+new',
        ),
        fs,
        'not_found',
      );
      expect(fs.snapshot()).toEqual({ 'created.txt': 'hello\n' });
      expect(err.applied).toEqual({ added: ['created.txt'], modified: [], deleted: [], moved: [] });
    });

    it.each([
      ['/etc/passwd', 'absolute paths are not allowed'],
      ['../outside.txt', 'leads outside the working directory'],
    ])('refuses the path %j before writing anything', async (path, reason) => {
      const fs = new MemoryPatchFileSystem();
      const err = await refusal(
        patch('*** Add File: ok.txt', '+x', `*** Add File: ${path}`, '+x'),
        fs,
        'invalid_path',
      );
      expect(err.message).toContain(reason);
      expect(fs.snapshot()).toEqual({});
    });

    it('refuses a move out of the root', async () => {
      const fs = new MemoryPatchFileSystem({ 'a.txt': 'a\n' });
      await refusal(
        patch('*** Update File: a.txt', '*** Move to: ../b.txt', '@@', '-a', '+b'),
        fs,
        'invalid_path',
      );
      expect(fs.snapshot()).toEqual({ 'a.txt': 'a\n' });
    });

    it('refuses to update a file that is not UTF-8 text', async () => {
      const fs = new MemoryPatchFileSystem({ 'bin.dat': new Uint8Array([0xff, 0xfe, 0x00, 0x0a]) });
      const err = await refusal(patch('*** Update File: bin.dat', '@@', '+x'), fs, 'not_text');
      expect(err.message).toBe(
        'Failed to read file to update bin.dat: the file is not valid UTF-8 text',
      );
    });

    it('reports a failing file system as an io_error naming the operation', async () => {
      const fs = new MemoryPatchFileSystem();
      fs.writeFile = () => Promise.reject(new Error('EACCES: permission denied'));
      const err = await refusal(patch('*** Add File: a.txt', '+x'), fs, 'io_error');
      expect(err.message).toBe('Failed to write file a.txt: EACCES: permission denied');
    });
  });

  it('stops before the next hunk once aborted', async () => {
    const fs = new MemoryPatchFileSystem();
    const controller = new AbortController();
    const write = fs.writeFile.bind(fs);
    fs.writeFile = async (path, contents) => {
      await write(path, contents);
      controller.abort(new Error('cancelled'));
    };
    await expect(
      applyPatch(patch('*** Add File: a.txt', '+a', '*** Add File: b.txt', '+b'), fs, {
        signal: controller.signal,
      }),
    ).rejects.toThrow('cancelled');
    expect(fs.snapshot()).toEqual({ 'a.txt': 'a\n' });
  });

  it('keeps a byte order mark', async () => {
    const fs = new MemoryPatchFileSystem({ 'a.txt': '\uFEFFa\nb\n' });
    await applyPatch(patch('*** Update File: a.txt', '@@', '-b', '+c'), fs);
    expect(fs.snapshot()['a.txt']).toBe('\uFEFFa\nc\n');
  });
});

describe('applyChunks', () => {
  it('computes new contents without a file system', () => {
    const chunks = chunksOf(patch('*** Update File: x', '@@', ' a', '-b', '+B'));
    expect(applyChunks('a\nb\nc\n', chunks, 'x')).toBe('a\nB\nc\n');
  });

  it('refuses chunks that overlap', () => {
    const chunks = chunksOf(
      patch('*** Update File: x', '@@', '-b', '+B', '@@', '-b', '+C', '*** End of File'),
    );
    expect(() => applyChunks('a\nb\n', chunks, 'x')).toThrow('they overlap');
  });
});

describe('formatSummary', () => {
  it('prints the reference header even when nothing is listed', () => {
    expect(formatSummary({ added: [], modified: [], deleted: [], moved: [] })).toBe(
      'Success. Updated the following files:\n',
    );
  });
});
