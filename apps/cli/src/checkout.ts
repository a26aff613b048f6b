import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Why a patch cannot go onto the working directory's checkout, in words fit for stderr. */
export type CheckoutProblem = string;

async function git(cwd: string, args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

/**
 * Checks that `cwd` is inside a git work tree whose HEAD is exactly `baseCommit` and which has
 * no changes, tracked or untracked: the patch was computed against that tree and nothing else,
 * and `git apply --index` on a dirty tree would mix the agent's changes with the user's.
 * Returns the work tree's top directory, or the reason it will not do.
 */
export async function checkCheckout(
  cwd: string,
  baseCommit: string,
): Promise<{ ok: true; top: string } | { ok: false; problem: CheckoutProblem }> {
  let top: string;
  try {
    top = await git(cwd, ['rev-parse', '--show-toplevel']);
  } catch {
    return { ok: false, problem: `${cwd} is not inside a git work tree` };
  }
  let head: string;
  try {
    head = await git(top, ['rev-parse', '--verify', '--quiet', 'HEAD']);
  } catch {
    return { ok: false, problem: `the repository at ${top} has no commits (HEAD is unborn)` };
  }
  if (head !== baseCommit) {
    const known = await git(top, ['cat-file', '-e', `${baseCommit}^{commit}`]).then(
      () => true,
      () => false,
    );
    return {
      ok: false,
      problem:
        `HEAD is ${head}, but the patch is against ${baseCommit}; ` +
        (known
          ? `run \`git checkout ${baseCommit}\` (or a branch at it) first`
          : `that commit is not in this repository: fetch it first`),
    };
  }
  const dirty = await git(top, ['status', '--porcelain=v1', '--untracked-files=normal']);
  if (dirty !== '') {
    const files = dirty.split('\n');
    const shown = files.slice(0, 5).map((l) => `  ${l}`);
    if (files.length > 5) shown.push(`  … and ${files.length - 5} more`);
    return {
      ok: false,
      problem: `the work tree at ${top} has changes; commit or stash them first:\n${shown.join('\n')}`,
    };
  }
  return { ok: true, top };
}

/** `git apply --index` of `patch` in `top`; rejects with git's own message when it does not apply. */
export function gitApply(top: string, patch: Uint8Array): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['apply', '--index', '--whitespace=nowarn', '-'], {
      cwd: top,
      stdio: ['pipe', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve() : reject(new Error(stderr.trim() || `git apply exited ${code}`)),
    );
    child.stdin.end(patch);
  });
}
