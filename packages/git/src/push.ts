import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PatchbayError } from '@patchbay/core';
import { classifyRemoteFailure } from './remote-failure.js';
import { tail, type GitCallOptions, type GitResult } from './run-git.js';
import type { Mirror } from './types.js';
import type { CheckedRepoUrl } from './url-policy.js';

/** What to push, and with which credential. */
export interface PushRequest {
  /** The commit the patch applies to. */
  baseCommit: string;
  /** The task's patch against `baseCommit` (`git diff --binary`). */
  patch: Buffer;
  branch: string;
  message: string;
  author: { name: string; email: string };
  /** Sent as HTTP basic auth; never on a command line, in a URL or in a log. */
  auth: { username: string; token: string };
  /**
   * The commit this task pushed to `branch` before, if any. The branch may exist only at that
   * commit (it is the task's own); the new commit then goes on top of it.
   */
  previous: string | null;
  /** The ref the task started from: the pull request's base when it is a branch. */
  ref: string | null;
  signal?: AbortSignal | undefined;
}

export interface PushResult {
  commit: string;
  /** False when the branch already held this very tree at `previous` (nothing new to push). */
  pushed: boolean;
  /** The remote's default branch (HEAD), when it says. */
  defaultBranch: string | null;
  /** The branch a pull request should target: the task's ref if it is a branch, else the default. */
  baseBranch: string | null;
}

/**
 * Builds a commit of `baseCommit` + patch in the mirror (a private index, no work tree, nothing
 * checked out) and pushes it to a branch of the remote. Refuses the remote's default branch
 * (`branch_protected`) and a branch that exists at anything but `previous` (`branch_exists`);
 * the push itself is leased to what was read, so a branch made meanwhile is not overwritten.
 */
export async function pushPatch(
  mirror: Mirror,
  remote: CheckedRepoUrl,
  pinned: Pick<GitCallOptions, 'config' | 'env'>,
  request: PushRequest,
): Promise<PushResult> {
  const { git, gitDir } = mirror;
  const header = `Authorization: Basic ${Buffer.from(`${request.auth.username}:${request.auth.token}`).toString('base64')}`;
  // The credential goes in through the environment (GIT_CONFIG_*), which no `ps` shows.
  const remoteCall = (timeoutMs: number): GitCallOptions => ({
    gitDir,
    timeoutMs,
    ...(request.signal ? { signal: request.signal } : {}),
    ...(pinned.config ? { config: pinned.config } : {}),
    env: {
      ...pinned.env,
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: 'http.extraHeader',
      GIT_CONFIG_VALUE_0: header,
    },
  });

  const wanted = [`refs/heads/${request.branch}`];
  if (request.ref !== null && request.ref !== request.branch)
    wanted.push(`refs/heads/${request.ref}`);
  const listed = await git.run(
    ['ls-remote', '--symref', '--', remote.url, 'HEAD', ...wanted],
    remoteCall(60_000),
  );
  if (listed.exitCode !== 0) throw remoteError('reading the branches', listed);
  const refs = parseLsRemote(listed.stdout.toString());
  const defaultBranch = refs.defaultBranch;
  if (request.branch === defaultBranch) {
    throw new PatchbayError(
      'branch_protected',
      `${request.branch} is the repository's default branch`,
      {
        details: { branch: request.branch },
      },
    );
  }
  const tip = refs.heads.get(request.branch) ?? null;
  if (tip !== null && tip !== request.previous) {
    throw new PatchbayError(
      'branch_exists',
      `branch ${request.branch} exists and was not made by this task`,
      { details: { branch: request.branch } },
    );
  }
  const baseBranch =
    request.ref !== null && refs.heads.has(request.ref) ? request.ref : defaultBranch;

  let parent = request.baseCommit;
  if (tip !== null) {
    // The task's earlier delivery: the new commit goes on top. The mirror may have lost it.
    const have = await git.run(['cat-file', '-e', `${tip}^{commit}`], { gitDir });
    if (have.exitCode !== 0) {
      const fetched = await git.run(
        [
          'fetch',
          '--quiet',
          '--no-tags',
          '--no-write-fetch-head',
          '--',
          remote.url,
          `refs/heads/${request.branch}`,
        ],
        remoteCall(300_000),
      );
      if (fetched.exitCode !== 0) throw remoteError('fetching the branch', fetched);
    }
    parent = tip;
  }

  const tree = await treeOf(mirror, request.baseCommit, request.patch);
  if (tip !== null && (await run(mirror, ['rev-parse', `${tip}^{tree}`])).trim() === tree) {
    return { commit: tip, pushed: false, defaultBranch, baseBranch };
  }
  const now = `${Math.floor(Date.now() / 1000)} +0000`;
  const commit = (
    await run(mirror, ['commit-tree', tree, '-p', parent, '-F', '-'], {
      stdin: request.message.endsWith('\n') ? request.message : `${request.message}\n`,
      env: {
        GIT_AUTHOR_NAME: request.author.name,
        GIT_AUTHOR_EMAIL: request.author.email,
        GIT_AUTHOR_DATE: now,
        GIT_COMMITTER_NAME: request.author.name,
        GIT_COMMITTER_EMAIL: request.author.email,
        GIT_COMMITTER_DATE: now,
      },
    })
  ).trim();
  // Kept under a ref of its own, so housekeeping never prunes it before the next delivery.
  await run(mirror, ['update-ref', `refs/patchbay/delivered/${request.branch}`, commit]);

  const pushed = await git.run(
    [
      'push',
      '--porcelain',
      '--no-verify',
      `--force-with-lease=refs/heads/${request.branch}:${tip ?? ''}`,
      '--',
      remote.url,
      `${commit}:refs/heads/${request.branch}`,
    ],
    remoteCall(300_000),
  );
  if (pushed.exitCode !== 0) {
    const text = `${pushed.stdout.toString()}\n${pushed.stderr}`;
    if (/stale info|\[rejected\]|non-fast-forward|fetch first/i.test(text)) {
      throw new PatchbayError(
        'branch_exists',
        `branch ${request.branch} changed on the remote while it was pushed`,
        { details: { branch: request.branch } },
      );
    }
    throw remoteError('pushing', pushed);
  }
  return { commit, pushed: true, defaultBranch, baseBranch };
}

/** The tree of `base` with the patch applied, written through a private index file. */
async function treeOf(mirror: Mirror, base: string, patch: Buffer): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'patchbay-deliver-'));
  const env = { GIT_INDEX_FILE: join(dir, 'index') };
  try {
    await run(mirror, ['read-tree', base], { env });
    if (patch.length > 0) {
      await run(mirror, ['apply', '--cached', '--binary', '--whitespace=nowarn', '-'], {
        env,
        stdin: patch,
      });
    }
    return (await run(mirror, ['write-tree'], { env })).trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function run(
  mirror: Mirror,
  args: string[],
  call: Pick<GitCallOptions, 'env' | 'stdin'> = {},
): Promise<string> {
  const result = await mirror.git.run(args, { gitDir: mirror.gitDir, ...call });
  if (result.exitCode !== 0) {
    throw new PatchbayError(
      'delivery_failed',
      `git ${args[0] ?? ''} failed: ${tail(result.stderr, 500)}`,
    );
  }
  return result.stdout.toString();
}

function parseLsRemote(text: string): { defaultBranch: string | null; heads: Map<string, string> } {
  let defaultBranch: string | null = null;
  const heads = new Map<string, string>();
  for (const line of text.split('\n')) {
    const symref = /^ref: refs\/heads\/(\S+)\tHEAD$/.exec(line);
    if (symref) defaultBranch = symref[1]!;
    const head = /^([0-9a-f]{40})\trefs\/heads\/(\S+)$/.exec(line);
    if (head) heads.set(head[2]!, head[1]!);
  }
  return { defaultBranch, heads };
}

function remoteError(doing: string, result: GitResult): PatchbayError {
  const stderr = tail(result.stderr, 500);
  if (classifyRemoteFailure(result.stderr) === 'auth') {
    return new PatchbayError(
      'delivery_auth_failed',
      `the remote refused the credential while ${doing}`,
      { details: { stderr } },
    );
  }
  return new PatchbayError('delivery_failed', `${doing} failed: ${stderr}`, {
    details: { stderr },
    retryable: true,
  });
}
