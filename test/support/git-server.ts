import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FixtureRepo } from './git-fixtures.js';

export { FixtureRepo, binaryBytes, type FileSpec } from './git-fixtures.js';

/** Builds one served repository; `repo` starts empty with branch `main`. */
export type RepoBuilder = (repo: FixtureRepo) => Promise<void>;

export interface GitServerOptions {
  /** Repositories to build and serve, by name as it appears in the URL (e.g. `app.git`). */
  repos?: Record<string, RepoBuilder>;
  /**
   * Loopback address to listen on. Anything outside 127.0.0.0/8 is refused, so a test can never
   * open a port another machine could reach.
   * @default '127.0.0.1'
   */
  host?: string;
  /** Repository names answered with `301 Location: <target><rest of the path>`. */
  redirects?: Record<string, string>;
  /** Repository names whose requests are accepted and never answered. */
  hang?: readonly string[];
  /** Repository names that demand HTTP authentication (`401`). */
  auth?: readonly string[];
  /**
   * Repository names that accept pushes (receive-pack), each only with HTTP basic auth whose
   * password is the token given; reads stay open. Every other repository refuses pushes.
   */
  pushTokens?: Record<string, string | readonly string[]>;
  /**
   * Server-side git config for every repository, e.g. `uploadpack.allowAnySHA1InWant`.
   * @default { 'uploadpack.allowReachableSHA1InWant': 'true' } (as GitHub and GitLab do)
   */
  config?: Record<string, string>;
}

/** One request the server saw. */
export interface GitRequest {
  method: string;
  /** Path and query as sent. */
  url: string;
  /** First path segment: the repository name. */
  repo: string;
  at: number;
}

export interface GitServer {
  readonly host: string;
  readonly port: number;
  /** Every request seen so far, in arrival order. */
  readonly requests: GitRequest[];
  /** Pushes refused for a missing or wrong token. */
  readonly pushRefusals: { repo: string; at: number }[];
  /** `http://host:port/<name>`. */
  url(name: string): string;
  /** The fixture behind a served repository, to add commits to it mid-test. */
  repo(name: string): FixtureRepo;
  /** Builds and serves one more repository. */
  addRepo(name: string, build?: RepoBuilder): Promise<FixtureRepo>;
  /** Requests currently being answered, per repository name. */
  inFlight(name: string): number;
  /** Highest number of requests for `name` that were ever answered at once. */
  maxInFlight(name: string): number;
  /** Stops listening, drops open connections and deletes the repositories. Idempotent. */
  close(): Promise<void>;
}

/**
 * A real smart-HTTP git server: node:http in front of `git http-backend` run as a CGI per
 * request, on a random port of a loopback address.
 */
export async function startGitServer(options: GitServerOptions = {}): Promise<GitServer> {
  const host = options.host ?? '127.0.0.1';
  if (isIP(host) !== 4 || !host.startsWith('127.')) {
    throw new Error(`the test git server listens on 127.0.0.0/8 only, not ${host}`);
  }
  const root = await mkdtemp(join(tmpdir(), 'patchbay-git-server-'));
  const repos = new Map<string, FixtureRepo>();
  const requests: GitRequest[] = [];
  const pushRefusals: { repo: string; at: number }[] = [];
  const inFlight = new Map<string, number>();
  const maxInFlight = new Map<string, number>();
  const serverConfig = options.config ?? { 'uploadpack.allowReachableSHA1InWant': 'true' };
  const configEnv: NodeJS.ProcessEnv = {};
  Object.entries(serverConfig).forEach(([key, value], i) => {
    configEnv[`GIT_CONFIG_KEY_${i}`] = key;
    configEnv[`GIT_CONFIG_VALUE_${i}`] = value;
  });
  configEnv.GIT_CONFIG_COUNT = String(Object.keys(serverConfig).length);

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const url = req.url ?? '/';
    const path = decodeURIComponent(url.split('?')[0] ?? '/');
    const query = url.includes('?') ? url.slice(url.indexOf('?') + 1) : '';
    // A repository's name is its first path segment, or two for an `owner/name.git` one.
    const [, first = '', second = ''] = path.split('/');
    const repo = repos.has(`${first}/${second}`) ? `${first}/${second}` : first;
    requests.push({ method: req.method ?? 'GET', url, repo, at: Date.now() });
    const now = (inFlight.get(repo) ?? 0) + 1;
    inFlight.set(repo, now);
    maxInFlight.set(repo, Math.max(now, maxInFlight.get(repo) ?? 0));
    res.once('close', () => inFlight.set(repo, (inFlight.get(repo) ?? 1) - 1));

    if (options.hang?.includes(repo)) return;
    const redirect = options.redirects?.[repo];
    if (redirect !== undefined) {
      res.writeHead(301, { Location: redirect + url.slice(repo.length + 1) }).end();
      return;
    }
    if (options.auth?.includes(repo)) {
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="fixture"' }).end();
      return;
    }
    const push = query.includes('service=git-receive-pack') || path.endsWith('/git-receive-pack');
    let remoteUser: string | undefined;
    if (push) {
      const tokens = [options.pushTokens?.[repo] ?? []].flat();
      const [scheme, encoded] = (req.headers.authorization ?? '').split(' ');
      const password =
        scheme === 'Basic'
          ? Buffer.from(encoded ?? '', 'base64')
              .toString()
              .split(':')
              .slice(1)
              .join(':')
          : undefined;
      if (password === undefined || !tokens.includes(password)) {
        pushRefusals.push({ repo, at: Date.now() });
        res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="push"' }).end();
        return;
      }
      remoteUser = 'pusher';
    }
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      ...(remoteUser === undefined ? {} : { REMOTE_USER: remoteUser }),
      HOME: root,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      ...configEnv,
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: path,
      REQUEST_METHOD: req.method ?? 'GET',
      QUERY_STRING: query,
      REMOTE_ADDR: req.socket.remoteAddress ?? '127.0.0.1',
      SERVER_PROTOCOL: 'HTTP/1.1',
    };
    const header = (name: string): string | undefined => {
      const value = req.headers[name];
      return Array.isArray(value) ? value[0] : value;
    };
    const contentType = header('content-type');
    if (contentType !== undefined) env.CONTENT_TYPE = contentType;
    const contentLength = header('content-length');
    if (contentLength !== undefined) env.CONTENT_LENGTH = contentLength;
    const encoding = header('content-encoding');
    if (encoding !== undefined) env.HTTP_CONTENT_ENCODING = encoding;
    // Protocol v2 is negotiated through this header; without it the backend speaks v0.
    const protocol = header('git-protocol');
    if (protocol !== undefined) env.GIT_PROTOCOL = protocol;

    const cgi = spawn('git', ['http-backend'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    req.pipe(cgi.stdin);
    cgi.stdin.on('error', () => undefined);
    cgi.stderr.resume();
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) {
        res.write(chunk);
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      const endLf = head.indexOf('\n\n');
      const [at, sep] = end >= 0 ? [end, 4] : endLf >= 0 ? [endLf, 2] : [-1, 0];
      if (at < 0) return;
      headersDone = true;
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of head.subarray(0, at).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon <= 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers);
      res.write(head.subarray(at + sep));
    });
    cgi.on('close', () => {
      if (!headersDone) res.writeHead(502).end();
      else res.end();
    });
    res.once('close', () => cgi.kill('SIGKILL'));
  };

  const server = createServer(handle);
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };

  const addRepo = async (name: string, build?: RepoBuilder): Promise<FixtureRepo> => {
    if (!/^([A-Za-z0-9_-][A-Za-z0-9._-]*\/)?[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
      throw new Error(`bad fixture repository name ${name}`);
    }
    const repo = await FixtureRepo.create(join(root, name));
    if (build) await build(repo);
    repos.set(name, repo);
    return repo;
  };
  for (const [name, build] of Object.entries(options.repos ?? {})) await addRepo(name, build);

  let closed: Promise<void> | undefined;
  return {
    host,
    port,
    requests,
    pushRefusals,
    url: (name) => `http://${host}:${port}/${name}`,
    repo: (name) => {
      const repo = repos.get(name);
      if (!repo) throw new Error(`no fixture repository ${name}`);
      return repo;
    },
    addRepo,
    inFlight: (name) => inFlight.get(name) ?? 0,
    maxInFlight: (name) => maxInFlight.get(name) ?? 0,
    close: () =>
      (closed ??= (async () => {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await rm(root, { recursive: true, force: true });
      })()),
  };
}

/**
 * A plain HTTP listener on a loopback address that records every connection and answers 404:
 * the "internal service" a hostile repository points at, proving nothing ever reached it.
 */
export async function startCanary(host = '127.0.0.2'): Promise<{
  url: string;
  readonly hits: number;
  close(): Promise<void>;
}> {
  if (isIP(host) !== 4 || !host.startsWith('127.')) {
    throw new Error(`the canary listens on 127.0.0.0/8 only, not ${host}`);
  }
  let hits = 0;
  const server = createServer((_req, res) => res.writeHead(404).end());
  server.on('connection', () => (hits += 1));
  server.listen(0, host);
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  return {
    url: `http://${host}:${port}`,
    get hits() {
      return hits;
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
