import type { ForgeConfig, GitCredential } from '@patchbay/core';
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

/** The hosts a repository URL is configured under: `host:port`, then the bare host name. */
function hostsOf(url: URL): string[] {
  return [url.host.toLowerCase(), url.hostname.toLowerCase()];
}

/** The forge configured for a repository's host, if any. */
export function forgeOf(
  repoUrl: string,
  forges: Record<string, ForgeConfig>,
): ForgeConfig | undefined {
  return hostsOf(new URL(repoUrl))
    .map((h) => forges[h])
    .find((f) => f !== undefined);
}

/** The operator's credential for a repository's host, if any. */
export function credentialOf(
  repoUrl: string,
  credentials: Record<string, GitCredential>,
): GitCredential | undefined {
  return hostsOf(new URL(repoUrl))
    .map((h) => credentials[h])
    .find((c) => c !== undefined);
}

/** A repository's path on its forge: `owner/name` from `https://host/owner/name.git`. */
export function repoPathOf(repoUrl: string): string {
  return new URL(repoUrl).pathname
    .replace(/^\/+/, '')
    .replace(/\.git$/, '')
    .replace(/\/+$/, '');
}
