import type { ForgeConfig } from '@patchbay/core';
import { BitbucketForge } from './bitbucket.js';
import type { Forge, ForgeClientOptions } from './forge.js';
import { GiteaForge } from './gitea.js';
import { GitHubForge } from './github.js';
import { GitLabForge } from './gitlab.js';

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
      return new GitLabForge(o);
    case 'gitea':
      return new GiteaForge(o);
    case 'bitbucket':
      return new BitbucketForge(o);
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
