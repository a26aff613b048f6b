import {
  forgeError,
  forgeRequest,
  type ForgeClientOptions,
  type PullRequestInput,
  type PullRequestRef,
} from './forge.js';

/**
 * Gitea and Forgejo (one API, v1): `POST /repos/:owner/:repo/pulls` with `head`, `base`,
 * `title`, `body`; a draft is a title starting "WIP: ". An open pull request from the same
 * branch (409) is looked up instead.
 */
export async function openGiteaPullRequest(
  o: ForgeClientOptions,
  input: PullRequestInput,
): Promise<PullRequestRef> {
  const pulls = `/repos/${input.repo.split('/').map(encodeURIComponent).join('/')}/pulls`;
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
