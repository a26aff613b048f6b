import type { ForgeConfig } from '@patchbay/core';
import { bitbucketForge } from './bitbucket.js';
import type { Forge, ForgeClientOptions } from './forge.js';
import { giteaForge } from './gitea.js';
import { GitHubForge } from './github.js';
import { gitLabForge } from './gitlab.js';

export type { Forge, PullRequestInput, PullRequestRef, ThreadRef } from './forge.js';

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
      return gitLabForge(o);
    case 'gitea':
      return giteaForge(o);
    case 'bitbucket':
      return bitbucketForge(o);
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

/** The key a repository's host has in `byHost`: `host:port`, else the bare host name. */
export function hostKeyOf(repoUrl: string, byHost: Record<string, unknown>): string | undefined {
  const url = new URL(repoUrl);
  return [url.host.toLowerCase(), url.hostname.toLowerCase()].find((h) => Object.hasOwn(byHost, h));
}

/** What the operator configured for a repository's host (its forge, its credential), if any. */
export function forHost<T>(repoUrl: string, byHost: Record<string, T>): T | undefined {
  const key = hostKeyOf(repoUrl, byHost);
  return key === undefined ? undefined : byHost[key];
}

/** A repository's path on its forge: `owner/name` from `https://host/owner/name.git`. */
export function repoPathOf(repoUrl: string): string {
  return new URL(repoUrl).pathname
    .replace(/^\/+/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
}
