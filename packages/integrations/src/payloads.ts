import type { Integration } from '@patchbay/core';
import type { Forge } from '@patchbay/delivery';
import { z } from 'zod';

export type ForgeName = Integration['forge'];

/** A forge's API for a repository (by its clone URL), if Patchbay may call it. */
export type ForgeFor = (repoUrl: string, kind: ForgeName) => Promise<Forge | null>;

/**
 * What a forge's webhook asked of Patchbay, the same for every forge: a comment on an issue or a
 * pull request, or an issue assigned to someone (whether to Patchbay is the policy's to say).
 */
export interface Mention {
  forge: ForgeName;
  kind: 'comment' | 'assignment';
  repo: {
    /** The repository's path on the forge, e.g. `owner/name`. */
    path: string;
    /** Where git fetches it. */
    cloneUrl: string;
  };
  thread: { number: number; pullRequest: boolean; title: string; body: string };
  /** The pull request's branch, when the payload names it (else the forge's API is asked). */
  branch: string | null;
  /** Who commented (or assigned). */
  author: { login: string; association: string | null; bot: boolean };
  /** The comment's text; empty for an assignment. */
  text: string;
  /** For an assignment: who the issue went to. */
  assignees: string[];
  /** The comment, or the issue, on the forge's web page. */
  url: string;
  /** When it happened (ISO 8601), for the replay window. */
  at: string;
}

/** A payload Patchbay acts on, or why not (an event it does not take, an action it ignores). */
export type Parsed = { mention: Mention } | { ignored: string };

const user = z.object({ login: z.string(), type: z.string().optional() });
const ghRepository = z.object({ full_name: z.string(), clone_url: z.string() });
const ghIssue = z.object({
  number: z.number().int().positive(),
  title: z.string(),
  body: z.string().nullable().optional(),
  html_url: z.string(),
  updated_at: z.string(),
  pull_request: z.object({}).passthrough().optional(),
});
const ghComment = z.object({
  body: z.string(),
  html_url: z.string(),
  created_at: z.string(),
  author_association: z.string(),
  user,
});

const GitHubIssueComment = z.object({
  action: z.string(),
  issue: ghIssue,
  comment: ghComment,
  repository: ghRepository,
});
const GitHubReviewComment = z.object({
  action: z.string(),
  pull_request: z.object({
    number: z.number().int().positive(),
    title: z.string(),
    body: z.string().nullable().optional(),
    head: z.object({ ref: z.string() }),
  }),
  comment: ghComment,
  repository: ghRepository,
});
const GitHubIssues = z.object({
  action: z.string(),
  issue: ghIssue,
  assignee: user.nullable().optional(),
  repository: ghRepository,
  sender: user,
});

const isBot = (u: { login: string; type?: string | undefined }): boolean =>
  u.type === 'Bot' || u.login.endsWith('[bot]');

/** A GitHub comment (on an issue, a pull request, or a pull request's diff) as a mention. */
function gitHubComment(
  p: { comment: z.infer<typeof ghComment>; repository: z.infer<typeof ghRepository> },
  thread: { number: number; title: string; body?: string | null | undefined; pullRequest: boolean },
  branch: string | null,
): Mention {
  return {
    forge: 'github',
    kind: 'comment',
    repo: { path: p.repository.full_name, cloneUrl: p.repository.clone_url },
    thread: {
      number: thread.number,
      pullRequest: thread.pullRequest,
      title: thread.title,
      body: thread.body ?? '',
    },
    branch,
    author: {
      login: p.comment.user.login,
      association: p.comment.author_association,
      bot: isBot(p.comment.user),
    },
    text: p.comment.body,
    assignees: [],
    url: p.comment.html_url,
    at: p.comment.created_at,
  };
}

/** A GitHub delivery (`X-GitHub-Event`): `issue_comment`, `pull_request_review_comment`, `issues`. */
export function parseGitHub(event: string, payload: unknown): Parsed {
  switch (event) {
    case 'issue_comment': {
      const p = GitHubIssueComment.parse(payload);
      if (p.action !== 'created') return { ignored: `action_${p.action}` };
      const thread = { ...p.issue, pullRequest: p.issue.pull_request !== undefined };
      return { mention: gitHubComment(p, thread, null) };
    }
    case 'pull_request_review_comment': {
      const p = GitHubReviewComment.parse(payload);
      if (p.action !== 'created') return { ignored: `action_${p.action}` };
      const thread = { ...p.pull_request, pullRequest: true };
      return { mention: gitHubComment(p, thread, p.pull_request.head.ref) };
    }
    case 'issues': {
      const p = GitHubIssues.parse(payload);
      if (p.action !== 'assigned' || !p.assignee) return { ignored: `action_${p.action}` };
      return {
        mention: {
          forge: 'github',
          kind: 'assignment',
          repo: { path: p.repository.full_name, cloneUrl: p.repository.clone_url },
          thread: {
            number: p.issue.number,
            pullRequest: false,
            title: p.issue.title,
            body: p.issue.body ?? '',
          },
          branch: null,
          // Assigning takes triage access on GitHub: the forge has vouched for the sender.
          author: { login: p.sender.login, association: 'COLLABORATOR', bot: isBot(p.sender) },
          text: '',
          assignees: [p.assignee.login],
          url: p.issue.html_url,
          at: p.issue.updated_at,
        },
      };
    }
    default:
      return { ignored: `event_${event || 'unnamed'}` };
  }
}

const GitLabNote = z.object({
  object_kind: z.literal('note'),
  user: z.object({ username: z.string() }),
  project: z.object({ path_with_namespace: z.string(), git_http_url: z.string() }),
  object_attributes: z.object({
    note: z.string(),
    noteable_type: z.string(),
    url: z.string(),
    created_at: z.string(),
  }),
  issue: z
    .object({
      iid: z.number().int().positive(),
      title: z.string(),
      description: z.string().nullable(),
    })
    .optional(),
  merge_request: z
    .object({
      iid: z.number().int().positive(),
      title: z.string(),
      description: z.string().nullable(),
      source_branch: z.string(),
    })
    .optional(),
});
const GitLabIssue = z.object({
  object_kind: z.literal('issue'),
  user: z.object({ username: z.string() }),
  project: z.object({ path_with_namespace: z.string(), git_http_url: z.string() }),
  object_attributes: z.object({
    iid: z.number().int().positive(),
    title: z.string(),
    description: z.string().nullable(),
    url: z.string(),
    updated_at: z.string(),
  }),
  changes: z
    .object({
      assignees: z
        .object({
          previous: z.array(z.object({ username: z.string() })),
          current: z.array(z.object({ username: z.string() })),
        })
        .optional(),
    })
    .passthrough()
    .optional(),
});

/** GitLab's times read "2024-05-17 18:08:09 UTC" in older payloads: made ISO 8601. */
const gitLabTime = (t: string): string => {
  const at = Date.parse(t.replace(/ UTC$/, 'Z').replace(' ', 'T'));
  return Number.isNaN(at) ? t : new Date(at).toISOString();
};

/** A GitLab delivery (`X-Gitlab-Event`): `Note Hook` on an issue or a merge request, `Issue Hook`. */
export function parseGitLab(event: string, payload: unknown): Parsed {
  if (event === 'Note Hook') {
    const p = GitLabNote.parse(payload);
    const a = p.object_attributes;
    const mr = a.noteable_type === 'MergeRequest' ? p.merge_request : undefined;
    const issue = a.noteable_type === 'Issue' ? p.issue : undefined;
    const thread = mr ?? issue;
    if (thread === undefined) return { ignored: `note_on_${a.noteable_type.toLowerCase()}` };
    return {
      mention: {
        forge: 'gitlab',
        kind: 'comment',
        repo: { path: p.project.path_with_namespace, cloneUrl: p.project.git_http_url },
        thread: {
          number: thread.iid,
          pullRequest: mr !== undefined,
          title: thread.title,
          body: thread.description ?? '',
        },
        branch: mr?.source_branch ?? null,
        author: { login: p.user.username, association: null, bot: false },
        text: a.note,
        assignees: [],
        url: a.url,
        at: gitLabTime(a.created_at),
      },
    };
  }
  if (event === 'Issue Hook') {
    const p = GitLabIssue.parse(payload);
    const change = p.changes?.assignees;
    if (change === undefined) return { ignored: 'issue_not_assigned' };
    const before = new Set(change.previous.map((u) => u.username));
    const added = change.current.map((u) => u.username).filter((u) => !before.has(u));
    if (added.length === 0) return { ignored: 'issue_not_assigned' };
    const a = p.object_attributes;
    return {
      mention: {
        forge: 'gitlab',
        kind: 'assignment',
        repo: { path: p.project.path_with_namespace, cloneUrl: p.project.git_http_url },
        thread: { number: a.iid, pullRequest: false, title: a.title, body: a.description ?? '' },
        branch: null,
        author: { login: p.user.username, association: null, bot: false },
        text: '',
        assignees: added,
        url: a.url,
        at: gitLabTime(a.updated_at),
      },
    };
  }
  return { ignored: `event_${event || 'unnamed'}` };
}

const GiteaComment = z.object({
  action: z.string(),
  issue: z.object({
    number: z.number().int().positive(),
    title: z.string(),
    body: z.string().nullable().optional(),
    pull_request: z.object({}).passthrough().nullable().optional(),
  }),
  comment: z.object({
    body: z.string(),
    html_url: z.string(),
    created_at: z.string(),
    user: user,
  }),
  repository: ghRepository,
  is_pull: z.boolean().optional(),
});
const GiteaIssues = z.object({
  action: z.string(),
  number: z.number().int().positive(),
  issue: z.object({
    title: z.string(),
    body: z.string().nullable().optional(),
    html_url: z.string(),
    updated_at: z.string(),
    assignees: z.array(user).nullable().optional(),
    assignee: user.nullable().optional(),
  }),
  repository: ghRepository,
  sender: user,
});

/**
 * A Gitea or Forgejo delivery (`X-Gitea-Event` / `X-Forgejo-Event`): `issue_comment` and
 * `pull_request_comment`, and `issues` assigned.
 */
export function parseGitea(event: string, payload: unknown): Parsed {
  if (event === 'issue_comment' || event === 'pull_request_comment') {
    const p = GiteaComment.parse(payload);
    if (p.action !== 'created') return { ignored: `action_${p.action}` };
    return {
      mention: {
        forge: 'gitea',
        kind: 'comment',
        repo: { path: p.repository.full_name, cloneUrl: p.repository.clone_url },
        thread: {
          number: p.issue.number,
          pullRequest: p.is_pull === true || (p.issue.pull_request ?? null) !== null,
          title: p.issue.title,
          body: p.issue.body ?? '',
        },
        branch: null,
        author: { login: p.comment.user.login, association: null, bot: false },
        text: p.comment.body,
        assignees: [],
        url: p.comment.html_url,
        at: p.comment.created_at,
      },
    };
  }
  if (event === 'issues' || event === 'issue_assign') {
    const p = GiteaIssues.parse(payload);
    if (p.action !== 'assigned') return { ignored: `action_${p.action}` };
    const assignees = (p.issue.assignees ?? (p.issue.assignee ? [p.issue.assignee] : [])).map(
      (u) => u.login,
    );
    return {
      mention: {
        forge: 'gitea',
        kind: 'assignment',
        repo: { path: p.repository.full_name, cloneUrl: p.repository.clone_url },
        thread: {
          number: p.number,
          pullRequest: false,
          title: p.issue.title,
          body: p.issue.body ?? '',
        },
        branch: null,
        author: { login: p.sender.login, association: null, bot: false },
        text: '',
        assignees,
        url: p.issue.html_url,
        at: p.issue.updated_at,
      },
    };
  }
  return { ignored: `event_${event || 'unnamed'}` };
}
