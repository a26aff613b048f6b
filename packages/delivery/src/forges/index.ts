import type { ForgeConfig } from '@patchbay/core';
import { openBitbucketPullRequest } from './bitbucket.js';
import type { Forge, ForgeClientOptions } from './forge.js';
import { openGiteaPullRequest } from './gitea.js';
import { GitHubForge } from './github.js';
import { openGitLabMergeRequest } from './gitlab.js';

export type { Forge, PullRequestInput, PullRequestRef } from './forge.js';

/** The client of a configured forge. */
export function forgeClient(
  config: ForgeConfig,
  token: string,
  options: Pick<ForgeClientOptions, 'fetch' | 'timeoutMs'> = {},
): Forge {
  const o: ForgeClientOptions = { apiUrl: config.apiUrl, token, ...options };
  switch (config.kind) {
    case 'github':
      return new GitHubForge(o);
    case 'gitlab':
      return { openPullRequest: (input) => openGitLabMergeRequest(o, input) };
    case 'gitea':
      return { openPullRequest: (input) => openGiteaPullRequest(o, input) };
    case 'bitbucket':
      return { openPullRequest: (input) => openBitbucketPullRequest(o, input) };
  }
}

/** The user name a forge expects with a token over git's HTTP basic auth. */
export function gitUsernameFor(kind: ForgeConfig['kind'] | undefined): string {
  switch (kind) {
    case 'github':
      return 'x-access-token';
    case 'gitlab':
      return 'oauth2';
    case 'bitbucket':
      return 'x-token-auth';
    default:
      return 'patchbay';
  }
}
