import { chmod, mkdir, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { applyPatch } from '../apply-patch/apply.js';
import { isApplyPatchError } from '../apply-patch/errors.js';
import { applyPatchTool, parseShellApplyPatch } from './apply-patch.js';
import { SandboxPatchFileSystem } from './sandbox-file-system.js';
import { ShellArgs, runShell } from './shell.js';
import { LocalProcessSandbox, toolContext } from './test-support.js';

const PATCH = '*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch';

describe('parseShellApplyPatch', () => {
  it('recognises apply_patch run through shell as argv', () => {
    expect(parseShellApplyPatch(['apply_patch', PATCH])).toEqual({ patch: PATCH, cd: undefined });
    expect(parseShellApplyPatch(['applypatch', PATCH])).toEqual({ patch: PATCH, cd: undefined });
  });

  it('recognises a heredoc script, with an optional cd, as a string or through bash -lc', () => {
    const script = `apply_patch <<'EOF'\n${PATCH}\nEOF\n`;
    expect(parseShellApplyPatch(script)).toEqual({ patch: PATCH, cd: undefined });
    expect(parseShellApplyPatch(['bash', '-lc', script])).toEqual({ patch: PATCH, cd: undefined });
    expect(parseShellApplyPatch(['bash', '-lc', `cd pkg/a && ${script}`])).toEqual({
      patch: PATCH,
      cd: 'pkg/a',
    });
    expect(parseShellApplyPatch(`cd 'my dir' && apply_patch <<"PATCH"\n${PATCH}\nPATCH`)).toEqual({
      patch: PATCH,
      cd: 'my dir',
    });
    expect(parseShellApplyPatch(`apply_patch '${PATCH}'`)).toEqual({ patch: PATCH, cd: undefined });
  });

  it('leaves other commands alone', () => {
    expect(parseShellApplyPatch(['ls', 'apply_patch'])).toBeUndefined();
    expect(parseShellApplyPatch('grep -r apply_patch .')).toBeUndefined();
    expect(parseShellApplyPatch(`apply_patch <<'EOF'\n${PATCH}\nEOF\nrm -rf x`)).toBeUndefined();
    expect(parseShellApplyPatch(['bash', '-lc', 'echo hi'])).toBeUndefined();
    expect(parseShellApplyPatch(['apply_patch'])).toBeUndefined();
  });
});

describe('SandboxPatchFileSystem and the apply_patch tool', () => {
  let dir: string;
  let workspace: string;
  let outside: string;
  const sandbox = new LocalProcessSandbox();

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'patchbay-fs-'));
    workspace = path.join(dir, 'workspace');
    outside = path.join(dir, 'outside');
    await mkdir(path.join(workspace, 'src'), { recursive: true });
    await mkdir(outside);
    await writeFile(path.join(outside, 'secret.txt'), 'secret\n');
    await writeFile(path.join(workspace, 'src', 'a.txt'), 'one\ntwo\n');
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const fsAt = (root?: string) =>
    new SandboxPatchFileSystem(sandbox, { boundary: workspace, ...(root ? { root } : {}) });

  it('reads, writes, creates directories and deletes relative to its root', async () => {
    const fs = fsAt();
    expect(await fs.stat('src/a.txt')).toBe('file');
    expect(await fs.stat('src')).toBe('directory');
    expect(await fs.stat('missing.txt')).toBeUndefined();
    expect(Buffer.from(await fs.readFile('src/a.txt')).toString()).toBe('one\ntwo\n');
    await fs.writeFile('new/deep/b.txt', 'b\n');
    expect(await readFile(path.join(workspace, 'new/deep/b.txt'), 'utf8')).toBe('b\n');
    await fs.deleteFile('src/a.txt');
    expect(await fs.stat('src/a.txt')).toBeUndefined();
    const sub = fsAt(path.join(workspace, 'src'));
    await sub.writeFile('c.txt', 'c\n');
    expect(await readFile(path.join(workspace, 'src/c.txt'), 'utf8')).toBe('c\n');
  });

  it('refuses paths that lead outside through symbolic links, dangling ones included', async () => {
    await symlink(outside, path.join(workspace, 'linkdir'));
    await symlink(path.join(outside, 'secret.txt'), path.join(workspace, 'linkfile'));
    await symlink(path.join(outside, 'nothing-yet.txt'), path.join(workspace, 'dangling'));
    const fs = fsAt();
    for (const file of ['linkdir/secret.txt', 'linkdir/new.txt', 'linkfile', 'dangling']) {
      const err: unknown = await fs.writeFile(file, 'pwned\n').catch((e: unknown) => e);
      expect(isApplyPatchError(err, 'invalid_path'), file).toBe(true);
      expect(String(err)).toContain('leads outside');
      await expect(fs.stat(file)).rejects.toThrow(/leads outside/);
    }
    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    await expect(stat(path.join(outside, 'new.txt'))).rejects.toThrow();
    await expect(stat(path.join(outside, 'nothing-yet.txt'))).rejects.toThrow();
    // A patch through the applier is refused the same way and changes nothing outside.
    const err: unknown = await applyPatch(
      '*** Begin Patch\n*** Update File: linkfile\n@@\n-secret\n+pwned\n*** End Patch',
      fs,
    ).catch((e: unknown) => e);
    expect(isApplyPatchError(err, 'invalid_path')).toBe(true);
  });

  it('follows links that stay inside, and deletes a link rather than its target', async () => {
    await symlink(path.join(workspace, 'src'), path.join(workspace, 'alias'));
    await symlink(path.join(outside, 'secret.txt'), path.join(workspace, 'out-link'));
    const fs = fsAt();
    await fs.writeFile('alias/through.txt', 'x\n');
    expect(await readFile(path.join(workspace, 'src/through.txt'), 'utf8')).toBe('x\n');
    await fs.deleteFile('out-link');
    expect(await readFile(path.join(outside, 'secret.txt'), 'utf8')).toBe('secret\n');
    await expect(stat(path.join(workspace, 'out-link'))).rejects.toThrow();
  });

  it('keeps the mode of a file it updates', async () => {
    const script = path.join(workspace, 'run.sh');
    await writeFile(script, '#!/bin/sh\necho a\n');
    await chmod(script, 0o755);
    await applyPatch(
      '*** Begin Patch\n*** Update File: run.sh\n@@\n-echo a\n+echo b\n*** End Patch',
      fsAt(),
    );
    expect(await readFile(script, 'utf8')).toBe('#!/bin/sh\necho b\n');
    expect((await stat(script)).mode & 0o777).toBe(0o755);
  });

  it('reports success like a command, and a refused patch with what was already applied', async () => {
    const context = toolContext(sandbox, { workspace });
    const ok = await applyPatchTool.run({ input: PATCH }, context);
    expect(ok.ok).toBe(true);
    expect(ok.output).toMatch(
      /^Exit code: 0\nWall time: [\d.]+ seconds\nOutput:\nSuccess. Updated the following files:\nA hello.txt\n$/,
    );
    expect(await readFile(path.join(workspace, 'hello.txt'), 'utf8')).toBe('hi\n');

    const partial =
      '*** Begin Patch\n*** Add File: second.txt\n+2\n*** Update File: src/a.txt\n@@\n-nope\n+x\n*** End Patch';
    const failed = await applyPatchTool.run({ input: partial }, context);
    expect(failed.ok).toBe(false);
    expect(failed.output).toContain('Exit code: 1');
    expect(failed.output).toContain('Failed to find expected lines in src/a.txt');
    expect(failed.output).toContain(
      'The earlier parts of the patch were applied and are kept:\nA second.txt',
    );

    const bad = await applyPatchTool.run({ input: 'not a patch' }, context);
    expect(bad.ok).toBe(false);
    expect(bad.output).toContain('Invalid patch');
    expect(bad.output).toContain('No file was changed.');
  });

  it('routes apply_patch run through shell to the applier, relative to workdir and cd', async () => {
    const context = toolContext(sandbox, { workspace });
    const viaArgv = await runShell(
      ShellArgs.parse({ command: ['apply_patch', PATCH], workdir: 'src' }),
      context,
    );
    expect(viaArgv.ok).toBe(true);
    expect(await readFile(path.join(workspace, 'src/hello.txt'), 'utf8')).toBe('hi\n');
    const script = `cd src && apply_patch <<'EOF'\n*** Begin Patch\n*** Update File: a.txt\n@@\n one\n-two\n+three\n*** End Patch\nEOF`;
    const viaScript = await runShell(
      ShellArgs.parse({ command: ['bash', '-lc', script] }),
      context,
    );
    expect(viaScript.output).toContain('M a.txt');
    expect(await readFile(path.join(workspace, 'src/a.txt'), 'utf8')).toBe('one\nthree\n');
    // No command ran apply_patch: the sandbox has no such program.
    expect(sandbox.calls.some((c) => JSON.stringify(c.command).startsWith('["apply_patch"'))).toBe(
      false,
    );
    await expect(
      runShell(
        ShellArgs.parse({
          command: ['bash', '-lc', `cd ../.. && apply_patch <<'EOF'\n${PATCH}\nEOF`],
        }),
        context,
      ),
    ).rejects.toThrow(/outside/);
  });
});
