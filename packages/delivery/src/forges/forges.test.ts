import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { forgeClient } from './index.js';

/**
 * The forges without a published schema a package ships: their documented request shapes
 * (GitLab "Create MR" and "Create new issue note / merge request note", Gitea/Forgejo
 * "repoCreatePullRequest" and "issueCreateComment", Bitbucket Cloud "Create a pull request"),
 * held strictly (no field they do not document), answered as each forge answers.
 */
const SHAPES = {
  'POST /gitlab/projects/group%2Fsub%2Fapp/merge_requests': z.strictObject({
    source_branch: z.string(),
    target_branch: z.string(),
    title: z.string(),
    description: z.string(),
    remove_source_branch: z.boolean(),
  }),
  'POST /gitea/repos/org/app/pulls': z.strictObject({
    head: z.string(),
    base: z.string(),
    title: z.string(),
    body: z.string(),
  }),
  'POST /gitlab/projects/group%2Fapp/issues/3/notes': z.strictObject({ body: z.string() }),
  'POST /gitlab/projects/group%2Fapp/merge_requests/7/notes': z.strictObject({ body: z.string() }),
  'POST /gitea/repos/org/app/issues/4/comments': z.strictObject({ body: z.string() }),
  'POST /bitbucket/repositories/team/app/pullrequests': z.strictObject({
    title: z.string(),
    description: z.string(),
    source: z.strictObject({ branch: z.strictObject({ name: z.string() }) }),
    destination: z.strictObject({ branch: z.strictObject({ name: z.string() }) }),
    draft: z.boolean(),
  }),
} as const;

const AUTH = {
  gitlab: 'Bearer tok-123',
  gitea: 'token tok-123',
  bitbucket: 'Bearer tok-123',
};

let server: Server;
let base: string;
let seen: { route: string; body: any }[] = [];
let existing = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const path = req.url ?? '';
      const route = `${req.method} ${path.split('?')[0]}`;
      const kind = path.split('/')[1] as keyof typeof AUTH;
      const send = (status: number, body: unknown) =>
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (req.headers.authorization !== AUTH[kind])
        return send(401, { message: '401 Unauthorized' });
      const body = text === '' ? undefined : JSON.parse(text);
      seen.push({ route, body });
      if (route === 'GET /gitlab/projects/group%2Fapp/merge_requests/7')
        return send(200, { iid: 7, source_branch: 'patchbay/x' });
      if (route === 'GET /gitea/repos/org/app/pulls/9')
        return send(200, { number: 9, head: { ref: 'patchbay/y' } });
      if (route === 'GET /gitea/repos/org/app/pulls/10') return send(404, { message: 'Not Found' });
      if (req.method === 'GET') {
        if (kind === 'gitlab') return send(200, [{ iid: 7, web_url: 'https://gl/mr/7' }]);
        return send(200, [{ number: 9, html_url: 'https://gt/pr/9', head: { ref: 'feature/x' } }]);
      }
      const shape = SHAPES[route as keyof typeof SHAPES];
      if (!shape) return send(404, { message: 'not found' });
      const parsed = shape.safeParse(body);
      if (!parsed.success) return send(422, { message: parsed.error.message });
      if (route.endsWith('/notes')) return send(201, { id: 11, body: body.body });
      if (route.endsWith('/comments'))
        return send(201, { id: 12, html_url: 'https://gt/org/app/issues/4#issuecomment-12' });
      if (existing && kind !== 'bitbucket') return send(409, { message: 'exists' });
      if (kind === 'gitlab') return send(201, { iid: 3, web_url: 'https://gl/mr/3' });
      if (kind === 'gitea') return send(201, { number: 4, html_url: 'https://gt/pr/4' });
      return send(201, { id: 5, links: { html: { href: 'https://bb/pr/5' } } });
    });
  }).listen(0, '127.0.0.1');
  await once(server, 'listening');
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(() => server.close());
beforeEach(() => {
  seen = [];
  existing = false;
});

const input = (repo: string) => ({
  repo,
  head: 'feature/x',
  base: 'main',
  title: 'Add notes',
  body: 'Body',
  draft: true,
});

describe('forge clients', () => {
  it('GitLab: a merge request in the documented shape, a draft by its title', async () => {
    const forge = forgeClient({ kind: 'gitlab', apiUrl: `${base}/gitlab` }, 'tok-123');
    expect(await forge.openPullRequest(input('group/sub/app'))).toEqual({
      url: 'https://gl/mr/3',
      number: 3,
    });
    expect(seen[0]!.body).toMatchObject({
      source_branch: 'feature/x',
      target_branch: 'main',
      title: 'Draft: Add notes',
    });
    existing = true;
    expect(await forge.openPullRequest(input('group/sub/app'))).toEqual({
      url: 'https://gl/mr/7',
      number: 7,
    });
  });

  it('Gitea and Forgejo: a pull request in the documented shape; an existing one is found', async () => {
    const forge = forgeClient({ kind: 'gitea', apiUrl: `${base}/gitea` }, 'tok-123');
    expect(await forge.openPullRequest(input('org/app'))).toEqual({
      url: 'https://gt/pr/4',
      number: 4,
    });
    expect(seen[0]!.body.title).toBe('WIP: Add notes');
    existing = true;
    expect(await forge.openPullRequest(input('org/app'))).toEqual({
      url: 'https://gt/pr/9',
      number: 9,
    });
  });

  it('Bitbucket Cloud: a pull request in the documented shape', async () => {
    const forge = forgeClient({ kind: 'bitbucket', apiUrl: `${base}/bitbucket` }, 'tok-123');
    expect(await forge.openPullRequest(input('team/app'))).toEqual({
      url: 'https://bb/pr/5',
      number: 5,
    });
    expect(seen[0]!.body).toMatchObject({ draft: true, destination: { branch: { name: 'main' } } });
  });

  it("comments on issues and pull requests, and reads a pull request's branch, as each API documents", async () => {
    const gitlab = forgeClient({ kind: 'gitlab', apiUrl: `${base}/gitlab` }, 'tok-123');
    expect(await gitlab.comment({ repo: 'group/app', number: 3, pullRequest: false }, 'Hi')).toBe(
      `${base}/gitlab/projects/group%2Fapp/issues/3/notes/11`,
    );
    await gitlab.comment({ repo: 'group/app', number: 7, pullRequest: true }, 'Hi');
    expect(await gitlab.pullRequestBranch('group/app', 7)).toBe('patchbay/x');
    const gitea = forgeClient({ kind: 'gitea', apiUrl: `${base}/gitea` }, 'tok-123');
    expect(await gitea.comment({ repo: 'org/app', number: 4, pullRequest: true }, 'Hi')).toBe(
      'https://gt/org/app/issues/4#issuecomment-12',
    );
    expect(await gitea.pullRequestBranch('org/app', 9)).toBe('patchbay/y');
    expect(seen.map((s) => s.route)).toEqual([
      'POST /gitlab/projects/group%2Fapp/issues/3/notes',
      'POST /gitlab/projects/group%2Fapp/merge_requests/7/notes',
      'GET /gitlab/projects/group%2Fapp/merge_requests/7',
      'POST /gitea/repos/org/app/issues/4/comments',
      'GET /gitea/repos/org/app/pulls/9',
    ]);
    await expect(gitea.pullRequestBranch('org/app', 10)).rejects.toMatchObject({
      code: 'delivery_failed',
      details: { status: 404 },
    });
    // An answer that names no branch (here, a list) is an error, not a branch.
    await expect(gitea.pullRequestBranch('org/app', 11)).rejects.toThrow(/no branch/);
  });

  it('a refused token is delivery_auth_failed, an unreachable API a retryable delivery_failed', async () => {
    const wrong = forgeClient({ kind: 'gitea', apiUrl: `${base}/gitea` }, 'wrong');
    await expect(wrong.openPullRequest(input('org/app'))).rejects.toMatchObject({
      code: 'delivery_auth_failed',
    });
    const down = forgeClient({ kind: 'gitlab', apiUrl: 'http://127.0.0.1:1' }, 'tok-123');
    await expect(down.openPullRequest(input('a/b'))).rejects.toMatchObject({
      code: 'delivery_failed',
      retryable: true,
    });
  });
});
