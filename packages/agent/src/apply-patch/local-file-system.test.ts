import { mkdir, mkdtemp, readFile, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { applyPatch } from './apply.js';
import { ApplyPatchError } from './errors.js';
import { LocalPatchFileSystem } from './local-file-system.js';

function patch(...body: string[]): string {
  return ['*** Begin Patch', ...body, '*** End Patch'].join('\n');
}

describe('LocalPatchFileSystem', () => {
  let base: string;
  let root: string;
  let outside: string;

  beforeEach(async () => {
    base = await mkdtemp(path.join(tmpdir(), 'patchbay-apply-patch-'));
    root = path.join(base, 'root');
    outside = path.join(base, 'outside');
    await mkdir(root);
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'secret\n');
  });

  afterEach(async () => {
    await rm(base, { recursive: true, force: true });
  });

  async function refusal(text: string): Promise<ApplyPatchError> {
    const err: unknown = await applyPatch(text, new LocalPatchFileSystem(root)).then(
      () => new Error('expected the patch to be refused'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApplyPatchError);
    return err as ApplyPatchError;
  }

  it('adds, updates, moves and deletes files under its root', async () => {
    await writeFile(path.join(root, 'a.txt'), 'one\r\ntwo\r\n');
    await writeFile(path.join(root, 'gone.txt'), 'x\n');
    const result = await applyPatch(
      patch(
        '*** Add File: new/dir/b.txt',
        '+hello',
        '*** Update File: a.txt',
        '*** Move to: moved/a.txt',
        '@@',
        '-two',
        '+TWO',
        '*** Delete File: gone.txt',
      ),
      new LocalPatchFileSystem(root),
    );
    expect(result.summary).toBe(
      'Success. Updated the following files:\nA new/dir/b.txt\nM moved/a.txt\nD gone.txt\n',
    );
    expect(await readFile(path.join(root, 'new/dir/b.txt'), 'utf8')).toBe('hello\n');
    expect(await readFile(path.join(root, 'moved/a.txt'), 'utf8')).toBe('one\r\nTWO\r\n');
    expect((await readdir(root)).sort()).toEqual(['moved', 'new']);
  });

  it('refuses to write through a symbolic link to a directory outside the root', async () => {
    await symlink(outside, path.join(root, 'escape'));
    const err = await refusal(patch('*** Add File: escape/pwned.txt', '+x'));
    expect(err.code).toBe('invalid_path');
    expect(err.message).toBe(
      'Invalid path escape/pwned.txt: the symbolic link escape leads outside the working directory',
    );
    expect(await readdir(outside)).toEqual(['secret.txt']);
  });

  it('refuses to update a file through a symbolic link pointing outside the root', async () => {
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
    const err = await refusal(patch('*** Update File: link.txt', '@@', '-secret', '+changed'));
    expect(err.code).toBe('invalid_path');
    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
  });

  it('refuses to write through a symbolic link that points nowhere', async () => {
    await symlink(path.join(outside, 'new.txt'), path.join(root, 'dangling'));
    const err = await refusal(patch('*** Add File: dangling', '+x'));
    expect(err.message).toBe('Invalid path dangling: the symbolic link dangling points to nothing');
    expect(await readdir(outside)).toEqual(['secret.txt']);
  });

  it('follows symbolic links that stay inside the root', async () => {
    await mkdir(path.join(root, 'real'));
    await writeFile(path.join(root, 'real/a.txt'), 'a\n');
    await symlink('real', path.join(root, 'alias'));
    await applyPatch(
      patch('*** Update File: alias/a.txt', '@@', '-a', '+b'),
      new LocalPatchFileSystem(root),
    );
    expect(await readFile(path.join(root, 'real/a.txt'), 'utf8')).toBe('b\n');
  });

  it('deletes a symbolic link itself, not the file it points to', async () => {
    await writeFile(path.join(root, 'target.txt'), 't\n');
    await symlink('target.txt', path.join(root, 'inner-link'));
    await applyPatch(patch('*** Delete File: inner-link'), new LocalPatchFileSystem(root));
    expect(await readdir(root)).toEqual(['target.txt']);
  });

  it('refuses to delete a symbolic link that leads outside the root', async () => {
    // Removing the link would be harmless, but every path is checked the same way, and a patch
    // that names such a link is suspect anyway.
    await symlink(path.join(outside, 'secret.txt'), path.join(root, 'link.txt'));
    expect((await refusal(patch('*** Delete File: link.txt'))).code).toBe('invalid_path');
    expect(await readdir(root)).toEqual(['link.txt']);
  });

  it('works when the root itself is reached through a symbolic link', async () => {
    const alias = path.join(base, 'root-alias');
    await symlink(root, alias);
    await applyPatch(patch('*** Add File: a.txt', '+a'), new LocalPatchFileSystem(alias));
    expect(await readFile(path.join(root, 'a.txt'), 'utf8')).toBe('a\n');
  });

  it('reports a path through a file as not found', async () => {
    await writeFile(path.join(root, 'file'), 'x\n');
    const err = await refusal(patch('*** Update File: file/child', '@@', '-a', '+b'));
    expect(err.code).toBe('not_found');
  });
});
