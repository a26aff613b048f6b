import { createHmac } from 'node:crypto';
import { Integration } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { parseGitLab, parseGitea } from './payloads.js';
import { deliveryOf, isSigned } from './signatures.js';

/**
 * GitLab's and Gitea's payloads, in the shapes their webhook documentation gives (GitLab "Comment
 * events" and "Issue events", Gitea/Forgejo `issue_comment` and `issues`), read into the one
 * mention the intake acts on; and each forge's way of signing a delivery.
 */
const project = {
  path_with_namespace: 'group/app',
  git_http_url: 'https://gitlab.example/group/app.git',
};

describe('GitLab payloads', () => {
  it('reads a note on a merge request with its source branch, and GitLab’s older time format', () => {
    const parsed = parseGitLab('Note Hook', {
      object_kind: 'note',
      event_type: 'note',
      user: { id: 1, name: 'Dev', username: 'dev' },
      project,
      object_attributes: {
        id: 1244,
        note: '@patchbay rename it',
        noteable_type: 'MergeRequest',
        url: 'https://gitlab.example/group/app/-/merge_requests/5#note_1244',
        created_at: '2026-12-05 09:08:07 UTC',
      },
      merge_request: {
        iid: 5,
        title: 'Notes',
        description: 'Adds notes',
        source_branch: 'patchbay/abc',
      },
    });
    expect(parsed).toEqual({
      mention: {
        forge: 'gitlab',
        kind: 'comment',
        repo: { path: 'group/app', cloneUrl: 'https://gitlab.example/group/app.git' },
        thread: { number: 5, pullRequest: true, title: 'Notes', body: 'Adds notes' },
        branch: 'patchbay/abc',
        author: { login: 'dev', association: null, bot: false },
        text: '@patchbay rename it',
        assignees: [],
        url: 'https://gitlab.example/group/app/-/merge_requests/5#note_1244',
        at: '2026-12-05T09:08:07.000Z',
      },
    });
  });

  it('takes an assignment from the assignee change only, and ignores notes on commits and snippets', () => {
    const issue = (previous: string[], current: string[]) => ({
      object_kind: 'issue',
      user: { username: 'lead' },
      project,
      object_attributes: {
        iid: 9,
        title: 'Flaky test',
        description: null,
        url: 'https://gitlab.example/group/app/-/issues/9',
        updated_at: '2026-12-05T09:00:00Z',
      },
      changes: {
        assignees: {
          previous: previous.map((username) => ({ username })),
          current: current.map((username) => ({ username })),
        },
      },
    });
    const assigned = parseGitLab('Issue Hook', issue(['dev'], ['dev', 'patchbay']));
    expect(assigned).toMatchObject({ mention: { kind: 'assignment', assignees: ['patchbay'] } });
    expect(parseGitLab('Issue Hook', issue(['patchbay'], []))).toEqual({
      ignored: 'issue_not_assigned',
    });
    expect(
      parseGitLab('Note Hook', {
        object_kind: 'note',
        user: { username: 'dev' },
        project,
        object_attributes: {
          note: '@patchbay',
          noteable_type: 'Commit',
          url: 'u',
          created_at: 't',
        },
      }),
    ).toEqual({ ignored: 'note_on_commit' });
    expect(parseGitLab('Push Hook', {})).toEqual({ ignored: 'event_Push Hook' });
    expect(() => parseGitLab('Note Hook', { object_kind: 'note' })).toThrow();
  });
});

describe('Gitea and Forgejo payloads', () => {
  const repository = { full_name: 'org/app', clone_url: 'https://gitea.example/org/app.git' };

  it('reads a comment on a pull request, and an issue assigned', () => {
    const payload = {
      action: 'created',
      issue: { number: 3, title: 'T', body: 'B', pull_request: { merged: false } },
      comment: {
        body: 'hi @patchbay',
        html_url: 'https://gitea.example/org/app/pulls/3#issuecomment-1',
        created_at: '2026-12-05T09:00:00Z',
        user: { login: 'dev' },
      },
      repository,
      sender: { login: 'dev' },
      is_pull: true,
    };
    expect(parseGitea('issue_comment', payload)).toMatchObject({
      mention: { forge: 'gitea', thread: { number: 3, pullRequest: true }, branch: null },
    });
    const assigned = parseGitea('issues', {
      action: 'assigned',
      number: 8,
      issue: {
        title: 'T',
        body: null,
        html_url: 'https://gitea.example/org/app/issues/8',
        updated_at: '2026-12-05T09:00:00Z',
        assignees: [{ login: 'patchbay' }],
      },
      repository,
      sender: { login: 'lead' },
    });
    expect(assigned).toMatchObject({
      mention: { kind: 'assignment', assignees: ['patchbay'], thread: { number: 8, body: '' } },
    });
    expect(parseGitea('issue_comment', { ...payload, action: 'deleted' })).toEqual({
      ignored: 'action_deleted',
    });
  });
});

describe('signatures', () => {
  const integration = (forge: 'github' | 'gitlab' | 'gitea') =>
    Integration.parse({ tenant: 't', forge, secret: 'a-secret-of-16-chars', repos: ['o/*'] });
  const body = '{"action":"created"}';
  const hmac = (secret: string) => createHmac('sha256', secret).update(body).digest('hex');

  it('checks each forge’s own: GitHub’s sha256= HMAC, GitLab’s token, Gitea’s and Forgejo’s hex HMAC', async () => {
    const github = integration('github');
    expect(
      await isSigned(github, { 'x-hub-signature-256': `sha256=${hmac(github.secret)}` }, body),
    ).toBe(true);
    expect(
      await isSigned(
        github,
        { 'x-hub-signature-256': `sha256=${hmac('another-secret-16ch')}` },
        body,
      ),
    ).toBe(false);
    expect(
      await isSigned(
        github,
        { 'x-hub-signature-256': `sha256=${hmac(github.secret)}` },
        `${body} `,
      ),
    ).toBe(false);
    expect(await isSigned(github, {}, body)).toBe(false);

    const gitlab = integration('gitlab');
    expect(await isSigned(gitlab, { 'x-gitlab-token': gitlab.secret }, body)).toBe(true);
    expect(await isSigned(gitlab, { 'x-gitlab-token': `${gitlab.secret}x` }, body)).toBe(false);

    const gitea = integration('gitea');
    expect(await isSigned(gitea, { 'x-gitea-signature': hmac(gitea.secret) }, body)).toBe(true);
    expect(await isSigned(gitea, { 'x-forgejo-signature': hmac(gitea.secret) }, body)).toBe(true);
    expect(await isSigned(gitea, { 'x-gitea-signature': hmac('another-secret-16ch') }, body)).toBe(
      false,
    );
  });

  it('names a delivery by the forge’s id, or by its bytes when it sends none', () => {
    expect(
      deliveryOf('github', { 'x-github-event': 'issues', 'x-github-delivery': 'd1' }, body),
    ).toEqual({
      event: 'issues',
      id: 'd1',
    });
    expect(
      deliveryOf('gitlab', { 'x-gitlab-event': 'Note Hook', 'idempotency-key': 'k' }, body).id,
    ).toBe('k');
    expect(
      deliveryOf('gitea', { 'x-forgejo-event': 'issues', 'x-forgejo-delivery': 'f' }, body),
    ).toEqual({
      event: 'issues',
      id: 'f',
    });
    const bare = deliveryOf('gitea', {}, body);
    expect(bare.id).toMatch(/^body-[0-9a-f]{64}$/);
    expect(deliveryOf('gitea', {}, body).id).toBe(bare.id);
  });
});
