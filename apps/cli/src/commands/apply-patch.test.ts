import { spawn } from 'node:child_process';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const bin = fileURLToPath(new URL('../../bin/patchbay.js', import.meta.url));

function patchbay(
  args: string[],
  options: { cwd: string; stdin?: string },
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { cwd: options.cwd });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

const addHello = '*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n';

describe('patchbay apply-patch', () => {
  let dir: string;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'patchbay-cli-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('applies the patch given as argument in the working directory', async () => {
    await writeFile(path.join(dir, 'a.txt'), 'one\n');
    const result = await patchbay(
      ['apply-patch', `*** Begin Patch\n*** Update File: a.txt\n@@\n-one\n+two\n*** End Patch`],
      { cwd: dir },
    );
    expect(result).toEqual({
      code: 0,
      stdout: 'Success. Updated the following files:\nM a.txt\n',
      stderr: '',
    });
    expect(await readFile(path.join(dir, 'a.txt'), 'utf8')).toBe('two\n');
  });

  it('reads the patch from standard input when no argument is given', async () => {
    const result = await patchbay(['apply-patch'], { cwd: dir, stdin: addHello });
    expect(result.code).toBe(0);
    expect(result.stdout).toBe('Success. Updated the following files:\nA hello.txt\n');
    expect(await readFile(path.join(dir, 'hello.txt'), 'utf8')).toBe('hi\n');
  });

  it('accepts a heredoc-wrapped patch argument', async () => {
    const result = await patchbay(['apply-patch', `<<'EOF'\n${addHello}EOF\n`], { cwd: dir });
    expect(result.code).toBe(0);
    expect(await readdir(dir)).toEqual(['hello.txt']);
  });

  it('exits 1 with the reason on stderr when the patch is refused', async () => {
    const result = await patchbay(
      ['apply-patch', '*** Begin Patch\n*** Delete File: missing.txt\n*** End Patch'],
      { cwd: dir },
    );
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: 'Failed to delete file missing.txt: No such file or directory\n',
    });
  });

  it('exits 1 on a malformed patch', async () => {
    const result = await patchbay(['apply-patch', 'not a patch'], { cwd: dir });
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      "Invalid patch: The first line of the patch must be '*** Begin Patch'\n",
    );
  });

  it('exits 2 with usage when standard input is empty', async () => {
    const result = await patchbay(['apply-patch'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("Usage: patchbay apply-patch 'PATCH'");
  });
});
