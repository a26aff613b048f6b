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

/**
 * GitLab (REST v4). A project is named by its URL-encoded path; merge requests and issues by
 * their `iid`; comments are notes.
 */
export function gitLabForge(o: ForgeClientOptions): Forge {
  const auth = { authorization: `Bearer ${o.token}` };
  const project = (repo: string) => `/projects/${encodeURIComponent(repo)}`;
  return {
    openPullRequest: (input) => openGitLabMergeRequest(o, input),
    async comment(thread: ThreadRef, body: string) {
      const kind = thread.pullRequest ? 'merge_requests' : 'issues';
      const path = `${project(thread.repo)}/${kind}/${thread.number}/notes`;
      const note = await forgeRequest('GitLab', o, auth, 'POST', path, { body });
      if (note.status !== 201) throw forgeError('GitLab', note.status, note.body);
      const id = (note.body as { id: number }).id;
      return `${o.apiUrl}${path}/${id}`;
    },
    async pullRequestBranch(repo: string, number: number) {
      const mr = await forgeRequest(
        'GitLab',
        o,
        auth,
        'GET',
        `${project(repo)}/merge_requests/${number}`,
      );
      if (mr.status !== 200) throw forgeError('GitLab', mr.status, mr.body);
      return branchOf('GitLab', (mr.body as { source_branch?: unknown }).source_branch);
    },
  };
}

/**
 * GitLab merge requests (REST v4): `POST /projects/:path/merge_requests` with `source_branch`,
 * `target_branch`, `title`, `description`; a draft is a title starting "Draft: ". An open request
 * from the same branch (409) is looked up instead.
 */
async function openGitLabMergeRequest(
  o: ForgeClientOptions,
  input: PullRequestInput,
): Promise<PullRequestRef> {
  const project = `/projects/${encodeURIComponent(input.repo)}/merge_requests`;
  const auth = { authorization: `Bearer ${o.token}` };
  const created = await forgeRequest('GitLab', o, auth, 'POST', project, {
    source_branch: input.head,
    target_branch: input.base,
    title: input.draft ? `Draft: ${input.title}` : input.title,
    description: input.body,
    remove_source_branch: false,
  });
  if (created.status === 201) return refOf(created.body);
  if (created.status === 409) {
    const open = await forgeRequest(
      'GitLab',
      o,
      auth,
      'GET',
      `${project}?state=opened&source_branch=${encodeURIComponent(input.head)}`,
    );
    if (open.status === 200 && Array.isArray(open.body) && open.body.length > 0)
      return refOf(open.body[0]);
  }
  throw forgeError('GitLab', created.status, created.body);
}

function refOf(body: unknown): PullRequestRef {
  const mr = body as { iid: number; web_url: string };
  return { url: mr.web_url, number: mr.iid };
}
