import { type Config, StartupError } from '@patchbay/core';
import {
  type RepoUrlPolicy,
  checkRepoUrl,
  checkRepoUrlSyntax,
  compileRepoUrlPolicy,
} from '@patchbay/git';

/**
 * The submit-time URL check: every policy rule, including where the host resolves. A name that
 * does not resolve right now is accepted (the worker checks again before fetching, and fails the
 * task with `repo_unreachable` if it still does not); a refusal is a 422.
 */
export function createRepoUrlCheck(repos: Config['repos']): (url: string) => Promise<string> {
  let policy: RepoUrlPolicy;
  try {
    policy = compileRepoUrlPolicy({ hosts: repos.hosts, allowSsh: repos.allowSsh });
  } catch (err) {
    throw new StartupError(`invalid configuration: PATCHBAY_REPO_HOSTS: ${(err as Error).message}`);
  }
  return async (url) => {
    const checked = await checkRepoUrl(url, policy);
    if (checked.ok) return checked.url;
    if (checked.error.code === 'repo_unreachable') {
      const syntax = checkRepoUrlSyntax(url, policy);
      if (syntax.ok) return syntax.url;
    }
    throw checked.error;
  };
}
