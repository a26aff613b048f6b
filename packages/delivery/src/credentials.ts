import { createAppAuth } from '@octokit/auth-app';
import { request } from '@octokit/request';
import {
  type ForgeConfig,
  type GitCredential,
  type GitHubApp,
  PatchbayError,
} from '@patchbay/core';
import { forHost, hostKeyOf, repoPathOf } from './forges/index.js';

interface AppClient {
  auth: ReturnType<typeof createAppAuth>;
  request: typeof request;
}

/**
 * The operator's credential for a repository's host: a token set for the host
 * (`PATCHBAY_GIT_CREDENTIALS`), or, where Patchbay is a GitHub App (`PATCHBAY_GITHUB_APPS`), an
 * installation token of the app for that repository, made through `@octokit/auth-app` (which
 * signs the app's JWT and keeps each token until shortly before it expires).
 */
export class OperatorCredentials {
  readonly #credentials: Record<string, GitCredential>;
  readonly #apps: Record<string, GitHubApp>;
  readonly #forges: Record<string, ForgeConfig>;
  readonly #fetch: typeof fetch | undefined;
  readonly #clients = new Map<string, AppClient>();
  /** Installation ids by repository path (an app's installation on a repository rarely moves). */
  readonly #installations = new Map<string, number>();

  constructor(options: {
    credentials: Record<string, GitCredential>;
    githubApps: Record<string, GitHubApp>;
    forges: Record<string, ForgeConfig>;
    fetch?: typeof fetch;
  }) {
    this.#credentials = options.credentials;
    this.#apps = options.githubApps;
    this.#forges = options.forges;
    this.#fetch = options.fetch;
  }

  /** The credential for `repoUrl`'s host, or undefined when the operator set none. */
  async for(repoUrl: string): Promise<GitCredential | undefined> {
    const host = hostKeyOf(repoUrl, this.#apps);
    if (host === undefined) return forHost(repoUrl, this.#credentials);
    const forge = forHost(repoUrl, this.#forges);
    if (forge?.kind !== 'github')
      throw new PatchbayError(
        'delivery_auth_failed',
        `${host} has a GitHub App but is no GitHub host in PATCHBAY_FORGES`,
      );
    const { auth, request: req } = this.#client(host, this.#apps[host]!, forge.apiUrl);
    const path = repoPathOf(repoUrl);
    try {
      const known = this.#installations.get(`${host}/${path}`);
      const installationId: number = known ?? (await this.#installationOf(auth, req, path));
      this.#installations.set(`${host}/${path}`, installationId);
      const { token } = await auth({ type: 'installation', installationId });
      return { username: 'x-access-token', token };
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (status === 404)
        throw new PatchbayError(
          'delivery_auth_failed',
          `the GitHub App is not installed on ${path}`,
          { details: { reason: 'app_not_installed', repo: path } },
        );
      throw new PatchbayError(
        'delivery_failed',
        `GitHub App token for ${path}: ${(err as Error).message}`,
        { retryable: status === undefined || status >= 500 || status === 429 },
      );
    }
  }

  /** The app's installation on a repository, asked with the app's JWT. */
  async #installationOf(auth: AppClient['auth'], req: AppClient['request'], path: string) {
    const [owner, repo] = path.split('/');
    // The hook signs this route with the app's JWT: it is one of those that take one.
    const response: { data: { id: number } } = await auth.hook(
      req,
      'GET /repos/{owner}/{repo}/installation',
      { owner: owner!, repo: repo! },
    );
    return response.data.id;
  }

  #client(host: string, app: GitHubApp, apiUrl: string): AppClient {
    let client = this.#clients.get(host);
    if (client === undefined) {
      const req = request.defaults({
        baseUrl: apiUrl,
        headers: { 'user-agent': 'Patchbay' },
        request: { ...(this.#fetch ? { fetch: this.#fetch } : {}), redirect: 'error' },
      });
      client = {
        auth: createAppAuth({ appId: app.appId, privateKey: app.privateKey, request: req }),
        request: req,
      };
      this.#clients.set(host, client);
    }
    return client;
  }
}
