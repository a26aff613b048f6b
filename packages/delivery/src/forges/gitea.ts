import {
  branchOf,
  forgeError,
  forgeRequest,
  type ForgeClientOptions,
  type PullRequestInput,
  type PullRequestRef,
  type Forge,
  type ThreadRef,
} from './forge.js';

const repoPath = (repo: string) => `/repos/${repo.split('/').map(encodeURIComponent).join('/')}`;

/** Gitea and Forgejo (API v1): a pull request is an issue too, and takes its comments. */
export function giteaForge(o: ForgeClientOptions): Forge {
  const auth = { authorization: `token ${o.token}` };
  return {
    openPullRequest: (input) => openGiteaPullRequest(o, input),
    async comment(thread: ThreadRef, body: string) {
      const path = `${repoPath(thread.repo)}/issues/${thread.number}/comments`;
      const made = await forgeRequest('Gitea', o, auth, 'POST', path, { body });
      if (made.status !== 201) throw forgeError('Gitea', made.status, made.body);
      return (made.body as { html_url: string }).html_url;
    },
    async pullRequestBranch(repo: string, number: number) {
      const pr = await forgeRequest('Gitea', o, auth, 'GET', `${repoPath(repo)}/pulls/${number}`);
      if (pr.status !== 200) throw forgeError('Gitea', pr.status, pr.body);
      return branchOf('Gitea', (pr.body as { head?: { ref?: unknown } }).head?.ref);
    },
  };
}

/**
 * Gitea and Forgejo (one API, v1): `POST /repos/:owner/:repo/pulls` with `head`, `base`,
 * `title`, `body`; a draft is a title starting "WIP: ". An open pull request from the same
 * branch (409) is looked up instead.
 */
async function openGiteaPullRequest(
  o: ForgeClientOptions,
  input: PullRequestInput,
): Promise<PullRequestRef> {
  const pulls = `${repoPath(input.repo)}/pulls`;
  const auth = { authorization: `token ${o.token}` };
  const created = await forgeRequest('Gitea', o, auth, 'POST', pulls, {
    head: input.head,
    base: input.base,
    title: input.draft ? `WIP: ${input.title}` : input.title,
    body: input.body,
  });
  if (created.status === 201) return refOf(created.body);
  if (created.status === 409) {
    const open = await forgeRequest('Gitea', o, auth, 'GET', `${pulls}?state=open&limit=50`);
    const same = Array.isArray(open.body)
      ? (open.body as { head?: { ref?: string } }[]).find((p) => p.head?.ref === input.head)
      : undefined;
    if (same) return refOf(same);
  }
  throw forgeError('Gitea', created.status, created.body);
}

function refOf(body: unknown): PullRequestRef {
  const pr = body as { number: number; html_url: string };
  return { url: pr.html_url, number: pr.number };
}
