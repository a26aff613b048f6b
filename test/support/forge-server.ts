import { createVerify } from 'node:crypto';
import { once } from 'node:events';
import { createRequire } from 'node:module';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';

/**
 * A GitHub REST API on 127.0.0.1 that holds every request to GitHub's own published OpenAPI
 * description (`@octokit/openapi`): the operation must exist for the method and path, its path
 * and query parameters must be declared, the JSON body must validate against the operation's
 * schema and name no property the schema does not declare, and the token must be the expected
 * one. What does not pass is answered as GitHub would (404, 401, 422) and kept in `violations`.
 * Pull requests it accepts are kept, and a second one for the same head is a 422, as on GitHub;
 * a pull request it keeps can be read back, and comments on issues and pull requests are kept.
 */
export interface GitHubApi {
  url: string;
  /** Requests that broke the description, in words. */
  violations: string[];
  /** Every request: method, path and parsed body. */
  requests: { method: string; path: string; body: unknown }[];
  pulls: {
    owner: string;
    repo: string;
    number: number;
    head: string;
    base: string;
    title: string;
    body: string;
    draft: boolean;
  }[];
  /** Comments made, in order: on issues and pull requests alike (GitHub's issue comments). */
  comments: { owner: string; repo: string; number: number; body: string }[];
  close(): Promise<void>;
}

interface Operation {
  method: string;
  template: string;
  pattern: RegExp;
  parameters: { name: string; in: string; required?: boolean }[];
  bodySchema: Record<string, unknown> | undefined;
  bodyRequired: boolean;
}

let operations: Operation[] | undefined;

function loadOperations(): Operation[] {
  if (operations) return operations;
  const require = createRequire(import.meta.url);
  const doc = require('@octokit/openapi/generated/api.github.com.deref.json') as {
    paths: Record<string, Record<string, any>>;
  };
  operations = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of ['get', 'post', 'patch', 'put', 'delete']) {
      const op = item[method];
      if (!op) continue;
      const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      operations.push({
        method: method.toUpperCase(),
        template,
        pattern,
        parameters: [...(item.parameters ?? []), ...(op.parameters ?? [])],
        bodySchema: op.requestBody?.content?.['application/json']?.schema,
        bodyRequired: op.requestBody?.required === true,
      });
    }
  }
  return operations;
}

/**
 * A GitHub App the API knows: its JWTs (RS256, `iss` its id) are checked with its public key,
 * it is installed (as `installationId`) on every repository, and the installation tokens it gets
 * are `token`, which the other operations then take.
 */
export interface StandInApp {
  id: number;
  publicKey: string;
  installationId: number;
  token: string;
}

/** Whether `jwt` is the app's: signed with its key, issued by it, not expired. */
function isAppJwt(jwt: string, app: StandInApp): boolean {
  const [header, payload, signature] = jwt.split('.');
  if (!header || !payload || !signature) return false;
  const signed = createVerify('RSA-SHA256')
    .update(`${header}.${payload}`)
    .verify(app.publicKey, Buffer.from(signature, 'base64url'));
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as {
    iss?: unknown;
    exp?: number;
  };
  return signed && String(claims.iss) === String(app.id) && (claims.exp ?? 0) * 1000 > Date.now();
}

export async function startGitHubApi(options: {
  token: string;
  app?: StandInApp;
}): Promise<GitHubApi> {
  const ops = loadOperations();
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addFormat('repo.nwo', /^[^/]+\/[^/]+$/);
  const violations: string[] = [];
  const requests: GitHubApi['requests'] = [];
  const pulls: GitHubApi['pulls'] = [];
  const comments: GitHubApi['comments'] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString();
    let body: unknown;
    try {
      body = text === '' ? undefined : JSON.parse(text);
    } catch {
      body = text;
    }
    requests.push({ method: req.method ?? '', path: url.pathname, body });
    const send = (status: number, payload: unknown): void => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(payload));
    };
    const refuse = (status: number, why: string): void => {
      violations.push(`${req.method} ${url.pathname}: ${why}`);
      send(status, { message: why });
    };
    const op = ops.find((o) => o.method === req.method && o.pattern.test(url.pathname));
    if (!op) return refuse(404, 'no such operation in the GitHub OpenAPI description');
    const auth = req.headers.authorization ?? '';
    const app = options.app;
    // The app's own routes take its JWT; the others a token (an installation's, with an app).
    const asApp =
      op.template === '/repos/{owner}/{repo}/installation' || op.template.startsWith('/app/');
    if (asApp) {
      if (!app || !/^bearer /i.test(auth) || !isAppJwt(auth.slice(7), app))
        return send(401, { message: 'A JSON web token could not be decoded' });
    } else {
      const tokens = [options.token, ...(app ? [app.token] : [])];
      if (!tokens.some((t) => auth === `token ${t}` || auth === `Bearer ${t}`))
        return send(401, { message: 'Bad credentials' });
    }
    const queryNames = new Set(op.parameters.filter((p) => p.in === 'query').map((p) => p.name));
    for (const name of url.searchParams.keys())
      if (!queryNames.has(name)) return refuse(422, `query parameter ${name} is not declared`);
    if (op.bodySchema && (body !== undefined || op.bodyRequired)) {
      if (!ajv.validate(op.bodySchema, body)) return refuse(422, `body: ${ajv.errorsText()}`);
      const declared = Object.keys((op.bodySchema.properties as object | undefined) ?? {});
      for (const key of Object.keys(body as object))
        if (!declared.includes(key)) return refuse(422, `body property ${key} is not declared`);
    }
    const [, , owner, repo] = url.pathname.split('/');
    if (op.template === '/repos/{owner}/{repo}/pulls' && req.method === 'POST') {
      const b = body as {
        head: string;
        base: string;
        title: string;
        body?: string;
        draft?: boolean;
      };
      if (pulls.some((p) => p.owner === owner && p.repo === repo && p.head === b.head))
        return send(422, {
          message: 'Validation Failed',
          errors: [{ message: `A pull request already exists for ${owner}:${b.head}.` }],
        });
      const number = pulls.length + 1;
      pulls.push({
        owner: owner!,
        repo: repo!,
        number,
        head: b.head,
        base: b.base,
        title: b.title,
        body: b.body ?? '',
        draft: b.draft ?? false,
      });
      return send(201, pullView(owner!, repo!, number, b.head, b.base));
    }
    if (op.template === '/repos/{owner}/{repo}/pulls' && req.method === 'GET') {
      const head = url.searchParams.get('head')?.split(':').at(-1);
      return send(
        200,
        pulls
          .filter(
            (p) => p.owner === owner && p.repo === repo && (head === undefined || p.head === head),
          )
          .map((p) => pullView(owner!, repo!, p.number, p.head, p.base)),
      );
    }
    if (app && op.template === '/repos/{owner}/{repo}/installation') {
      return send(200, { id: app.installationId, app_id: app.id, account: { login: owner } });
    }
    if (app && op.template === '/app/installations/{installation_id}/access_tokens') {
      if (url.pathname.split('/')[3] !== String(app.installationId))
        return send(404, { message: 'Not Found' });
      return send(201, {
        token: app.token,
        expires_at: new Date(Date.now() + 3_600_000).toISOString(),
        permissions: { contents: 'write', pull_requests: 'write', issues: 'write' },
        repository_selection: 'all',
      });
    }
    if (op.template === '/repos/{owner}/{repo}/pulls/{pull_number}' && req.method === 'GET') {
      const number = Number(url.pathname.split('/')[5]);
      const pull = pulls.find((p) => p.owner === owner && p.repo === repo && p.number === number);
      if (!pull) return send(404, { message: 'Not Found' });
      return send(200, pullView(owner!, repo!, pull.number, pull.head, pull.base));
    }
    if (
      op.template === '/repos/{owner}/{repo}/issues/{issue_number}/comments' &&
      req.method === 'POST'
    ) {
      const number = Number(url.pathname.split('/')[5]);
      comments.push({ owner: owner!, repo: repo!, number, body: (body as { body: string }).body });
      const id = comments.length;
      return send(201, {
        id,
        html_url: `https://github.example/${owner}/${repo}/issues/${number}#issuecomment-${id}`,
        body: (body as { body: string }).body,
      });
    }
    return refuse(501, `operation ${op.template} is valid but not served here`);
  };

  const server = createServer(
    (req, res) => void handle(req, res).catch(() => res.writeHead(500).end()),
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    violations,
    requests,
    pulls,
    comments,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function pullView(owner: string, repo: string, number: number, head: string, base: string) {
  return {
    number,
    html_url: `https://github.example/${owner}/${repo}/pull/${number}`,
    state: 'open',
    head: { ref: head },
    base: { ref: base },
  };
}
