import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

// The reference scenarios of the Codex patch format live in ../shared beside the repository (CI
// always has it): beside this checkout, or beside the repository it was cloned from (a clone into
// a temporary directory). Missing, the test fails loudly; PATCHBAY_NO_CONFORMANCE=1 skips it on
// purpose.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const RUNNER = path.join('shared', 'conformance', 'apply-patch', 'run');

/** The checkout this one was cloned from, when that is a directory on this machine. */
function originRoot(): string | undefined {
  try {
    const url = execFileSync('git', ['-C', repoRoot, 'config', '--get', 'remote.origin.url'], {
      encoding: 'utf8',
    }).trim();
    return path.isAbsolute(url) && existsSync(url) ? url : undefined;
  } catch {
    return undefined;
  }
}

const candidates = [repoRoot, originRoot()].flatMap((root) =>
  root === undefined ? [] : [path.resolve(root, '..', RUNNER)],
);
const runner = candidates.find((file) => existsSync(file)) ?? candidates[0]!;
const optedOut = process.env.PATCHBAY_NO_CONFORMANCE === '1';
// The `patchbay` bin as npm links it, which is what `npx patchbay` runs inside the repository.
// Called by absolute path: the runner applies each scenario in a temporary directory outside
// the repository, where `npx patchbay` would fetch an unrelated package from the registry.
const patchbay = path.join(repoRoot, 'node_modules', '.bin', 'patchbay');

function run(
  file: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { cwd: repoRoot, timeout: 240_000 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

describe('apply_patch conformance', () => {
  it.skipIf(optedOut && !existsSync(runner))(
    'passes every reference scenario through `patchbay apply-patch`',
    async () => {
      expect(
        existsSync(runner),
        `${runner} is missing: check out the shared directory beside the repository, or set PATCHBAY_NO_CONFORMANCE=1 to skip this test`,
      ).toBe(true);
      expect(existsSync(patchbay), `${patchbay} is missing: run npm install`).toBe(true);

      const result = await run(runner, [patchbay, 'apply-patch']);

      const lastLine = result.stdout.trimEnd().split('\n').at(-1);
      expect(lastLine, `${result.stdout}${result.stderr}`).toBe('25 passed, 0 failed');
      expect(result.code).toBe(0);
    },
    300_000,
  );
});
