import { Octokit } from '@octokit/rest';
import { PatchbayError } from '@patchbay/core';
import {
  forgeError,
  type Forge,
  type ForgeClientOptions,
  type PullRequestInput,
  type PullRequestRef,
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
      const status = (err as { status?: number }).status;
      if (status === 422) {
        // "A pull request already exists for owner:head": the branch's open one is the answer.
        const { data } = await this.#octokit.rest.pulls
          .list({ owner, repo, head: `${owner}:${input.head}`, state: 'open' })
          .catch(() => ({ data: [] }));
        const open = data[0];
        if (open) return { url: open.html_url, number: open.number };
      }
      if (status === undefined) {
        throw new PatchbayError(
          'delivery_failed',
          `GitHub API unreachable: ${(err as Error).message}`,
          {
            retryable: true,
          },
        );
      }
      throw forgeError(
        'GitHub',
        status,
        (err as { response?: { data?: unknown } }).response?.data ?? '',
      );
    }
  }
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
