import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import examples from '@octokit/webhooks-examples';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGitHubApi, type GitHubApi } from '../support/forge-server.js';
import { applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, lifecycleOf, startStack, waitForTask } from '../support/stack.js';

/**
 * Forge mentions on the real stack: signed GitHub deliveries (the payloads of
 * `@octokit/webhooks-examples`, pointed at a repository served here) start tasks, are taken
 * once, answer on the thread and open a pull request through a GitHub API held to GitHub's
 * published OpenAPI description; a mention on that pull request is the task's next turn, on the
 * same branch. Patchbay acts there as a GitHub App: every push, pull request and comment uses an
 * installation token it got with the app's JWT. GitLab's and Gitea's deliveries go through the
 * same door.
 */
const run = promisify(execFile);
const TOKEN = 'push-token-8d2e6f1a9c3b5047';
/** The installation token the stand-in hands the app; the only one the git server takes. */
const APP_TOKEN = 'ghs_installation-token-5e1f7a2c9b';
const SECRET = 'github-webhook-secret-5b7e';
const GITLAB_SECRET = 'gitlab-webhook-token-1c9d';
const GITEA_SECRET = 'gitea-webhook-secret-4a2f';
const REPO = 'acme/app.git';

const CREATE = `*** Begin Patch
*** Add File: notes.txt
+line one
*** End Patch`;
const EDIT = `*** Begin Patch
*** Update File: notes.txt
@@
 line one
+line two
*** End Patch`;

type Example = { name: string; examples: Record<string, any>[] };
const EXAMPLES = examples as unknown as Example[];
const example = (name: string, action: string): Record<string, any> =>
  structuredClone(
    EXAMPLES.find((e) => e.name === name)!.examples.find((x) => x.action === action)!,
  );

let stack: Stack;
let github: GitHubApi;
let cloneUrl: string;
let keyDir: string;

beforeAll(async () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  keyDir = await mkdtemp(join(tmpdir(), 'patchbay-app-key-'));
  const keyFile = join(keyDir, 'app.pem');
  await writeFile(keyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  github = await startGitHubApi({
    token: TOKEN,
    app: {
      id: 4242,
      publicKey: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      installationId: 77,
      token: APP_TOKEN,
    },
  });
  stack = await startStack({
    repos: { [REPO]: async (repo) => void (await repo.commit({ 'README.md': '# App\n' })) },
    git: { pushTokens: { [REPO]: [APP_TOKEN] } },
    env: (git) => ({
      PATCHBAY_GITHUB_APPS: `${git.host}:${git.port}=4242:${keyFile}`,
      PATCHBAY_FORGES: `${git.host}:${git.port}=github:${github.url}`,
      PATCHBAY_PUBLIC_URL: 'https://patchbay.example',
      PATCHBAY_INTEGRATIONS: JSON.stringify([
        {
          tenant: 'local',
          forge: 'github',
          secret: SECRET,
          repos: ['acme/*'],
          login: 'patchbay-bot',
          task: { verify: 'grep -q "line one" notes.txt', draft: true },
        },
        {
          tenant: 'local',
          forge: 'gitlab',
          secret: GITLAB_SECRET,
          repos: ['acme/app'],
          users: ['dev'],
        },
        {
          tenant: 'local',
          forge: 'gitea',
          secret: GITEA_SECRET,
          repos: ['acme/app'],
          users: ['dev'],
        },
      ]),
    }),
    script: scenarioScript({
      create: steps([applyPatch(CREATE)], 'Added the notes file.'),
      edit: steps([applyPatch(EDIT)], 'Added a second line.'),
      slow: steps([shell('sleep 4; echo "line three" >> notes.txt')], 'Added a third line.'),
    }),
  });
  cloneUrl = stack.git.url(REPO);
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await github?.close();
  if (keyDir) await rm(keyDir, { recursive: true, force: true });
});

/** An `issue_comment` delivery: the example payload, on our repository, said now. */
function issueComment(
  text: string,
  options: {
    number?: number;
    pullRequest?: boolean;
    association?: string;
    login?: string;
    at?: Date;
  } = {},
): Record<string, any> {
  const p = example('issue_comment', 'created');
  p.repository.full_name = 'acme/app';
  p.repository.clone_url = cloneUrl;
  p.issue.number = options.number ?? 7;
  p.issue.title = 'The notes file is missing';
  p.issue.body = 'We need a notes file with "line one" in it.';
  if (options.pullRequest) p.issue.pull_request = { url: 'https://api.github.example/pulls/1' };
  else delete p.issue.pull_request;
  p.comment.body = text;
  p.comment.author_association = options.association ?? 'MEMBER';
  p.comment.user.login = options.login ?? 'octodev';
  p.comment.user.type = 'User';
  p.comment.created_at = (options.at ?? new Date()).toISOString();
  return p;
}

async function deliver(
  event: string,
  payload: unknown,
  options: { id?: string; secret?: string } = {},
): Promise<{ status: number; body: any }> {
  const body = JSON.stringify(payload);
  const signature = createHmac('sha256', options.secret ?? SECRET)
    .update(body)
    .digest('hex');
  const res = await fetch(`${stack.url}/v1/integrations/github/events`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-github-event': event,
      'x-github-delivery': options.id ?? randomUUID(),
      'x-hub-signature-256': `sha256=${signature}`,
    },
    body,
  });
  return { status: res.status, body: await res.json() };
}

async function until<T>(what: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  for (const deadline = Date.now() + ms; Date.now() < deadline;) {
    const value = await what();
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('timed out');
}

describe('forge mentions', () => {
  it('starts one task for a signed comment delivered twice, answers on the issue, opens the pull request, and takes a pull request comment as turn 2 on the same branch', async () => {
    const id = randomUUID();
    const comment = issueComment('@patchbay please add it. SCENARIO:create');
    const first = await deliver('issue_comment', comment, { id });
    expect(first.status, JSON.stringify(first.body)).toBe(202);
    expect(first.body.outcome).toBe('started');
    const again = await deliver('issue_comment', comment, { id });
    expect(again).toEqual({ status: 200, body: { outcome: 'duplicate' } });

    const { body: list } = await call(stack, 'GET', '/v1/tasks?limit=100');
    const mentioned = (list.tasks as any[]).filter((t) => t.origin?.kind === 'mention');
    expect(mentioned.map((t) => t.id)).toEqual([first.body.taskId]);

    const taskId = first.body.taskId as string;
    const task = await waitForTask(stack, taskId, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.origin).toEqual({
      kind: 'mention',
      mention: {
        forge: 'github',
        repo: 'acme/app',
        number: 7,
        pullRequest: false,
        url: comment.comment.html_url,
        author: 'octodev',
      },
    });
    expect(task.prompt).toContain('please add it. SCENARIO:create');
    expect(task.prompt).toContain('issue #7 of acme/app: The notes file is missing');
    expect(task.prompt).not.toContain('@patchbay');
    expect(task.result.verify.passed).toBe(true);

    // Delivered as a pull request that closes the issue; the issue hears that work started, and
    // where the pull request is.
    const delivered = await until(async () => {
      const { body } = await call(stack, 'GET', `/v1/tasks/${taskId}`);
      return body.delivery?.status === 'delivered' ? body : undefined;
    });
    expect(github.pulls).toEqual([
      expect.objectContaining({
        owner: 'acme',
        repo: 'app',
        head: `patchbay/${taskId}`,
        base: 'main',
      }),
    ]);
    expect(github.pulls[0]!.title).toBe('The notes file is missing');
    expect(github.pulls[0]!.body).toContain('Closes #7.');
    // The integration asks for drafts.
    expect(github.pulls[0]!.draft).toBe(true);
    const onIssue = await until(async () => {
      const made = github.comments.filter((c) => c.number === 7);
      return made.length >= 2 ? made : undefined;
    });
    expect(onIssue[0]!.body).toBe(
      `Patchbay is on it: task [${taskId}](https://patchbay.example/#/tasks/${taskId}).`,
    );
    expect(onIssue[1]!.body).toContain(`Done: opened ${delivered.delivery.pullRequest.url}`);
    expect(onIssue[1]!.body).toContain('Verify passed');
    expect(onIssue[1]!.body).toContain('Added the notes file.');

    // A mention on that pull request: turn 2, committed on top, on the same branch.
    const pr = delivered.delivery.pullRequest.number as number;
    const followUp = await deliver(
      'issue_comment',
      issueComment('@Patchbay add a second line too SCENARIO:edit', {
        number: pr,
        pullRequest: true,
      }),
    );
    expect(followUp.status, JSON.stringify(followUp.body)).toBe(202);
    expect(followUp.body).toEqual({ outcome: 'followed_up', taskId, turn: 2 });
    const second = await until(async () => {
      const { body } = await call(stack, 'GET', `/v1/tasks/${taskId}`);
      return body.delivery?.turn === 2 && body.delivery.status === 'delivered' ? body : undefined;
    }, 120_000);
    expect(second.turns[1].prompt).toBe('add a second line too SCENARIO:edit');
    expect(second.delivery.branch).toBe(`patchbay/${taskId}`);
    expect(second.delivery.pullRequest.number).toBe(pr);
    expect(github.pulls).toHaveLength(1);
    const dir = await mkdtemp(join(tmpdir(), 'patchbay-mention-'));
    try {
      await run('git', ['clone', '-q', '--branch', `patchbay/${taskId}`, cloneUrl, dir]);
      const { stdout: parent } = await run('git', ['-C', dir, 'rev-parse', 'HEAD^']);
      expect(parent.trim()).toBe(delivered.delivery.commit);
      const { stdout: notes } = await run('git', ['-C', dir, 'show', 'HEAD:notes.txt']);
      expect(notes).toBe('line one\nline two\n');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const onPull = await until(async () => {
      const made = github.comments.filter((c) => c.number === pr);
      return made.length >= 2 ? made : undefined;
    });
    expect(onPull[0]!.body).toContain('turn 2 of task');
    expect(onPull[1]!.body).toContain(`pushed ${second.delivery.commit.slice(0, 12)}`);
    expect(await lifecycleOf(stack, taskId)).toEqual([
      'task.queued',
      'task.started',
      'task.succeeded',
      'task.delivered',
      'turn.queued',
      'task.started',
      'task.succeeded',
      'task.delivered',
    ]);

    // A request while a turn is at work is not taken, and the pull request hears why.
    const third = await deliver(
      'issue_comment',
      issueComment('@patchbay one more SCENARIO:slow', { number: pr, pullRequest: true }),
    );
    expect(third.body).toEqual({ outcome: 'followed_up', taskId, turn: 3 });
    const busy = await deliver(
      'issue_comment',
      issueComment('@patchbay and another SCENARIO:edit', { number: pr, pullRequest: true }),
    );
    expect(busy).toEqual({ status: 200, body: { outcome: 'ignored', reason: 'task_busy' } });
    const said = github.comments.filter((c) =>
      c.body.startsWith('Patchbay cannot take this now: '),
    );
    expect(said.map((c) => c.number)).toEqual([pr]);
    expect((await waitForTask(stack, taskId, {}, 120_000)).status).toBe('succeeded');

    // Every call Patchbay made back is one GitHub's description has, shaped as it says.
    expect(github.violations).toEqual([]);
    const calls = github.requests.map((r) => `${r.method} ${r.path}`);
    expect(calls).toContain(`GET /repos/acme/app/pulls/${pr}`);
    expect(calls).toContain('POST /repos/acme/app/issues/7/comments');
    expect(calls).toContain('POST /repos/acme/app/pulls');
    // As the app: its installation found with its JWT, then a token of that installation.
    expect(calls).toContain('GET /repos/acme/app/installation');
    expect(calls).toContain('POST /app/installations/77/access_tokens');
  }, 300_000);

  it('ignores, with the reason, what the policy does not allow, and refuses what is not signed', async () => {
    const before = (await call(stack, 'GET', '/v1/tasks?limit=100')).body.tasks.length;
    const cases: [string, Record<string, any>, string][] = [
      ['a stranger', issueComment('@patchbay do it', { association: 'NONE' }), 'association_none'],
      ['a bot', issueComment('@patchbay do it', { login: 'ci[bot]' }), 'author_is_a_bot'],
      [
        'Patchbay itself',
        issueComment('@patchbay do it', { login: 'patchbay-bot' }),
        'author_is_a_bot',
      ],
      ['no mention', issueComment('patchbay is great; mail @patchbayer'), 'no_mention'],
      ['an e-mail address', issueComment('write to ops@patchbay.dev'), 'no_mention'],
      [
        'an old comment',
        issueComment('@patchbay do it', { at: new Date(Date.now() - 4 * 86_400_000) }),
        'outside_replay_window',
      ],
      [
        'another repository',
        {
          ...issueComment('@patchbay do it'),
          repository: { ...issueComment('').repository, full_name: 'other/app' },
        },
        'repository_not_allowed',
      ],
      ['an edit', { ...issueComment('@patchbay do it'), action: 'edited' }, 'action_edited'],
      [
        'a pull request Patchbay did not open',
        issueComment('@patchbay do it', { number: 99, pullRequest: true }),
        'not_a_patchbay_pull_request',
      ],
    ];
    for (const [what, payload, reason] of cases) {
      const res = await deliver('issue_comment', payload);
      expect(res, what).toEqual({ status: 200, body: { outcome: 'ignored', reason } });
    }
    expect(await deliver('push', { ref: 'refs/heads/main' })).toEqual({
      status: 200,
      body: { outcome: 'ignored', reason: 'event_push' },
    });

    const wrong = await deliver('issue_comment', issueComment('@patchbay do it'), {
      secret: 'not-the-secret-at-all',
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body.error.code).toBe('unauthorized');
    const unsigned = await fetch(`${stack.url}/v1/integrations/github/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-github-event': 'issue_comment' },
      body: JSON.stringify(issueComment('@patchbay do it')),
    });
    expect(unsigned.status).toBe(401);
    const form = await fetch(`${stack.url}/v1/integrations/github/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'payload=%7B%7D',
    });
    expect(form.status).toBe(415);
    const unknown = await fetch(`${stack.url}/v1/integrations/bitbucket/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    expect(unknown.status).toBe(400);
    // Signed, but not shaped as GitHub sends it.
    const odd = await deliver('issue_comment', { action: 'created', issue: 'nope' });
    expect(odd.status).toBe(400);
    expect(odd.body.error.code).toBe('validation_error');

    // Every example payload of these events GitHub publishes is answered without a 5xx.
    for (const name of ['issue_comment', 'pull_request_review_comment', 'issues']) {
      for (const payload of EXAMPLES.find((e) => e.name === name)!.examples) {
        const res = await deliver(name, payload);
        expect([200, 202], `${name} ${payload.action}`).toContain(res.status);
        expect(res.body.outcome).toBe('ignored');
      }
    }
    expect((await call(stack, 'GET', '/v1/tasks?limit=100')).body.tasks.length).toBe(before);
  }, 60_000);

  it('starts a task for an issue assigned to Patchbay, and for GitLab and Gitea mentions', async () => {
    const assigned = example('issues', 'assigned');
    assigned.repository.full_name = 'acme/app';
    assigned.repository.clone_url = cloneUrl;
    assigned.assignee.login = 'patchbay-bot';
    assigned.issue.title = 'Add notes SCENARIO:create';
    assigned.issue.updated_at = new Date().toISOString();
    const byAssignment = await deliver('issues', assigned);
    expect(byAssignment.status, JSON.stringify(byAssignment.body)).toBe(202);
    const toSomeoneElse = await deliver('issues', { ...assigned, assignee: { login: 'octodev' } });
    expect(toSomeoneElse.body).toEqual({ outcome: 'ignored', reason: 'not_assigned_to_patchbay' });

    const note = {
      object_kind: 'note',
      user: { username: 'dev', name: 'Dev' },
      project: { path_with_namespace: 'acme/app', git_http_url: cloneUrl },
      object_attributes: {
        note: '@patchbay add notes SCENARIO:create',
        noteable_type: 'Issue',
        url: 'https://gitlab.example/acme/app/-/issues/3#note_1',
        created_at: new Date()
          .toISOString()
          .replace('T', ' ')
          .replace(/\.\d+Z$/, ' UTC'),
      },
      issue: { iid: 3, title: 'Notes', description: null },
    };
    const gitlab = async (token: string, user = 'dev') =>
      fetch(`${stack.url}/v1/integrations/gitlab/events`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-gitlab-event': 'Note Hook',
          'x-gitlab-token': token,
          'x-gitlab-event-uuid': randomUUID(),
        },
        body: JSON.stringify({ ...note, user: { username: user } }),
      });
    expect((await gitlab('wrong-token-0000000000')).status).toBe(401);
    expect(await (await gitlab(GITLAB_SECRET, 'stranger')).json()).toEqual({
      outcome: 'ignored',
      reason: 'author_not_listed',
    });
    const byGitLab = await gitlab(GITLAB_SECRET);
    expect(byGitLab.status).toBe(202);

    const giteaBody = JSON.stringify({
      action: 'created',
      issue: { number: 4, title: 'Notes', body: '', pull_request: null },
      comment: {
        body: '@patchbay add notes SCENARIO:create',
        html_url: 'https://gitea.example/acme/app/issues/4#issuecomment-9',
        created_at: new Date().toISOString(),
        user: { login: 'dev' },
      },
      repository: { full_name: 'acme/app', clone_url: cloneUrl },
      sender: { login: 'dev' },
      is_pull: false,
    });
    const byGitea = await fetch(`${stack.url}/v1/integrations/gitea/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-gitea-event': 'issue_comment',
        'x-gitea-delivery': randomUUID(),
        'x-gitea-signature': createHmac('sha256', GITEA_SECRET).update(giteaBody).digest('hex'),
      },
      body: giteaBody,
    });
    expect(byGitea.status).toBe(202);

    for (const [res, forge, number] of [
      [byAssignment.body, 'github', assigned.issue.number],
      [await byGitLab.json(), 'gitlab', 3],
      [await byGitea.json(), 'gitea', 4],
    ] as const) {
      const task = await waitForTask(stack, res.taskId, {}, 120_000);
      expect(task.status).toBe('succeeded');
      expect(task.origin.mention).toMatchObject({ forge, number, pullRequest: false });
    }
  }, 300_000);
});
