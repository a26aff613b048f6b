import { Octokit } from '@octokit/rest';
import { PatchbayError } from '@patchbay/core';
import {
  branchOf,
  forgeError,
  type Forge,
  type ForgeClientOptions,
  type PullRequestInput,
  type PullRequestRef,
  type ThreadRef,
} from './forge.js';

/** GitHub and GitHub Enterprise Server, through Octokit. */
export class GitHubForge implements Forge {
  readonly #octokit: Octokit;

  constructor(options: ForgeClientOptions) {
    this.#octokit = new Octokit({
      auth: options.token,
      baseUrl: options.apiUrl,
      userAgent: 'Patchbay',
      request: {
        ...(options.fetch ? { fetch: options.fetch } : {}),
        timeout: options.timeoutMs ?? 30_000,
        redirect: 'error',
      },
      log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
    });
  }

  async openPullRequest(input: PullRequestInput): Promise<PullRequestRef> {
    const [owner, repo] = splitRepo(input.repo);
    try {
      const { data } = await this.#octokit.rest.pulls.create({
        owner,
        repo,
        head: input.head,
        base: input.base,
        title: input.title,
        body: input.body,
        draft: input.draft,
      });
      return { url: data.html_url, number: data.number };
    } catch (err) {
      if ((err as { status?: number }).status === 422) {
        // "A pull request already exists for owner:head": the branch's open one is the answer.
        const { data } = await this.#octokit.rest.pulls
          .list({ owner, repo, head: `${owner}:${input.head}`, state: 'open' })
          .catch(() => ({ data: [] }));
        const open = data[0];
        if (open) return { url: open.html_url, number: open.number };
      }
      throw githubError(err);
    }
  }

  async comment(thread: ThreadRef, body: string): Promise<string> {
    const [owner, repo] = splitRepo(thread.repo);
    // A pull request is an issue to GitHub: its conversation takes issue comments.
    const { data } = await this.#octokit.rest.issues
      .createComment({ owner, repo, issue_number: thread.number, body })
      .catch((err: unknown) => {
        throw githubError(err);
      });
    return data.html_url;
  }

  async pullRequestBranch(path: string, number: number): Promise<string> {
    const [owner, repo] = splitRepo(path);
    const { data } = await this.#octokit.rest.pulls
      .get({ owner, repo, pull_number: number })
      .catch((err: unknown) => {
        throw githubError(err);
      });
    return branchOf('GitHub', (data as { head?: { ref?: unknown } }).head?.ref);
  }
}

/** Octokit's error as Patchbay's: unreachable (retryable), or what GitHub answered. */
function githubError(err: unknown): PatchbayError {
  const status = (err as { status?: number }).status;
  if (status === undefined) {
    return new PatchbayError(
      'delivery_failed',
      `GitHub API unreachable: ${(err as Error).message}`,
      {
        retryable: true,
      },
    );
  }
  return forgeError(
    'GitHub',
    status,
    (err as { response?: { data?: unknown } }).response?.data ?? '',
  );
}

function splitRepo(path: string): [string, string] {
  const parts = path.split('/');
  if (parts.length !== 2 || parts.some((p) => p === '')) {
    throw new PatchbayError(
      'delivery_failed',
      `${path} is not an owner/name GitHub repository path`,
    );
  }
  return [parts[0]!, parts[1]!];
}
