import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : [join(dir, entry.name)],
  );
}

/**
 * One naming rule for test support, checked rather than remembered:
 * - `testing.ts` or `testing/`: what a package offers other packages' tests, exported as
 *   `@patchbay/<name>/testing`;
 * - `test-support.ts` or `<name>.test-support.ts`: support for a package's own tests only;
 * - `test/support/`: the end-to-end suites' support.
 */
describe('test support', () => {
  it('is named by the rule in every package and app', () => {
    const wrong: string[] = [];
    for (const group of ['packages', 'apps']) {
      for (const name of readdirSync(join(root, group))) {
        const pkg = join(root, group, name);
        const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8')) as {
          exports?: Record<string, string>;
        };
        for (const file of files(join(pkg, 'src'))) {
          const path = relative(join(pkg, 'src'), file);
          const base = path.split('/').at(-1)!;
          const shared = path === 'testing.ts' || path.startsWith('testing/');
          if (shared && manifest.exports?.['./testing'] === undefined)
            wrong.push(`${group}/${name}/src/${path}: testing without a ./testing export`);
          if (shared || base === 'test-support.ts' || base.endsWith('.test-support.ts')) continue;
          if (/fixture|support|helper|testing|mock|fake/i.test(base))
            wrong.push(`${group}/${name}/src/${path}`);
        }
      }
    }
    expect(wrong).toEqual([]);
  });
});
