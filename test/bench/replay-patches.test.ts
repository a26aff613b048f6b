import { LocalPatchFileSystem, applyPatch } from '@patchbay/agent';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile, chmod, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  UnsupportedDiff,
  isTestPath,
  parseGitDiff,
  pathOf,
  toApplyPatch,
} from '../../bench/replay/patches.js';

const exec = promisify(execFile);
const dirs: string[] = [];

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec('git', ['-c', 'core.hooksPath=/dev/null', ...args], {
    cwd,
    maxBuffer: 64 * 1024 * 1024,
  });
  return stdout;
}

/** A repository with a base commit and a fix commit made by `change`; returns the diff. */
async function repoWith(
  files: Record<string, string>,
  change: (dir: string) => Promise<void>,
): Promise<{ dir: string; diff: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-replay-'));
  dirs.push(dir);
  await git(dir, 'init', '-q', '-b', 'main');
  await git(dir, 'config', 'user.email', 'replay@example.invalid');
  await git(dir, 'config', 'user.name', 'replay');
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'base');
  await change(dir);
  await git(dir, 'add', '-A');
  await git(dir, 'commit', '-q', '-m', 'fix');
  const diff = await git(
    dir,
    'diff',
    '--no-renames',
    '--no-color',
    '--no-ext-diff',
    'HEAD~1',
    'HEAD',
  );
  return { dir, diff };
}

const lines = (n: number, tag = 'line'): string =>
  Array.from({ length: n }, (_, i) => `${tag} ${i + 1}\n`).join('');

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('an upstream change for the replay oracle', () => {
  it('becomes an apply_patch that our own tool applies to the base, giving the fix commit exactly', async () => {
    const { dir, diff } = await repoWith(
      {
        'src/index.js': lines(60),
        'src/gone.js': 'module.exports = 1;\n',
        'test/index.test.js': lines(10, 'test'),
        'README.md': '# demo\n',
        'test/nested.test.js': 'describe(1, () => {\n  it(2, () => {\n  })\n})\n'.repeat(3),
      },
      async (d) => {
        // Three hunks in one file, a repeated line among them, an added and a deleted file.
        const text = lines(60)
          .replace('line 2\n', 'line 2\nline 2\n')
          .replace('line 30\n', 'line thirty\n')
          .replace('line 59\n', '');
        await writeFile(join(d, 'src/index.js'), text);
        await rm(join(d, 'src/gone.js'));
        await mkdir(join(d, 'src/lib'));
        await writeFile(join(d, 'src/lib/new.js'), 'export const x = 1;\n\nexport const y = 2;\n');
        await writeFile(join(d, 'test/index.test.js'), lines(12, 'test'));
        // Added at the end after context found earlier in the file too: anchored at the end.
        const nested = 'describe(1, () => {\n  it(2, () => {\n  })\n})\n'.repeat(3);
        await writeFile(join(d, 'test/nested.test.js'), `${nested}\nit(3, () => {})\n`);
      },
    );
    const files = parseGitDiff(diff);
    expect(files.map(pathOf).sort()).toEqual([
      'src/gone.js',
      'src/index.js',
      'src/lib/new.js',
      'test/index.test.js',
      'test/nested.test.js',
    ]);
    expect(files.find((f) => pathOf(f) === 'src/index.js')?.hunks).toHaveLength(3);

    // The tests apart from the rest, each applied in turn, as the oracle does.
    const tests = files.filter((f) => isTestPath(pathOf(f)));
    const rest = files.filter((f) => !isTestPath(pathOf(f)));
    expect(tests.map(pathOf)).toEqual(['test/index.test.js', 'test/nested.test.js']);
    await git(dir, 'checkout', '-q', 'HEAD~1');
    const fs = new LocalPatchFileSystem(dir);
    await applyPatch(toApplyPatch(tests), fs);
    await applyPatch(toApplyPatch(rest), fs);
    await git(dir, 'add', '-A');
    expect(await git(dir, 'diff', '--cached', '--stat', 'main')).toBe('');
  });

  it('refuses what apply_patch cannot say, with the reason', async () => {
    const binary = await repoWith({ 'a.bin': 'x' }, async (d) => {
      await writeFile(join(d, 'a.bin'), Buffer.from([0, 1, 2, 0, 255]));
    });
    expect(() => parseGitDiff(binary.diff)).toThrow(/binary/);
    const noEol = await repoWith({ 'a.txt': 'one\n' }, async (d) => {
      await writeFile(join(d, 'a.txt'), 'one\ntwo');
    });
    expect(() => parseGitDiff(noEol.diff)).toThrow(/without a newline/);
    const mode = await repoWith({ 'run.sh': 'echo hi\n' }, async (d) => {
      await chmod(join(d, 'run.sh'), 0o755);
    });
    expect(() => parseGitDiff(mode.diff)).toThrow(UnsupportedDiff);
    expect(() => parseGitDiff(mode.diff)).toThrow(/no content change/);
  });

  it('tells test files from the rest by the usual conventions', () => {
    for (const path of [
      'test/a.js',
      'packages/x/__tests__/b.ts',
      'spec/c.js',
      'src/d.test.ts',
      'lib/e.spec.mjs',
      'tests/fixtures/f.json',
    ])
      expect(isTestPath(path), path).toBe(true);
    for (const path of ['src/testing.js', 'lib/contest.js', 'README.md', 'src/spectrum.ts'])
      expect(isTestPath(path), path).toBe(false);
  });
});
