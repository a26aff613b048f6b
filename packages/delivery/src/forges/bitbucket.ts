import { PatchbayError } from '@patchbay/core';
import {
  forgeError,
  forgeRequest,
  type ForgeClientOptions,
  type PullRequestInput,
  type PullRequestRef,
  type Forge,
} from './forge.js';

/** Bitbucket Cloud: pull requests only; Patchbay takes no mentions from it. */
export function bitbucketForge(o: ForgeClientOptions): Forge {
  const unsupported = (): never => {
    throw new PatchbayError('delivery_failed', 'Patchbay answers no Bitbucket comments');
  };
  return {
    openPullRequest: (input) => openBitbucketPullRequest(o, input),
    comment: async () => unsupported(),
    pullRequestBranch: async () => unsupported(),
  };
}

/**
 * Bitbucket Cloud (REST 2.0): `POST /repositories/:workspace/:repo/pullrequests` with `title`,
 * `description`, `source.branch.name`, `destination.branch.name` and `draft`. Bitbucket answers
 * an existing open pull request from the same branch with that one (200), so no lookup is needed.
 */
async function openBitbucketPullRequest(
  o: ForgeClientOptions,
  input: PullRequestInput,
): Promise<PullRequestRef> {
  const path = `/repositories/${input.repo.split('/').map(encodeURIComponent).join('/')}/pullrequests`;
  const created = await forgeRequest(
    'Bitbucket',
    o,
    { authorization: `Bearer ${o.token}` },
    'POST',
    path,
    {
      title: input.title,
      description: input.body,
      source: { branch: { name: input.head } },
      destination: { branch: { name: input.base } },
      draft: input.draft,
    },
  );
  if (created.status === 200 || created.status === 201) {
    const pr = created.body as { id: number; links: { html: { href: string } } };
    return { url: pr.links.html.href, number: pr.id };
  }
  throw forgeError('Bitbucket', created.status, created.body);
}
