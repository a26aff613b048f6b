import { PatchbayError } from '@patchbay/core';

/** A pull (merge) request to open. */
export interface PullRequestInput {
  /** The repository's path on the forge: `owner/name` (GitLab: `group/subgroup/name`). */
  repo: string;
  /** The branch with the change. */
  head: string;
  /** The branch it goes into. */
  base: string;
  title: string;
  body: string;
  draft: boolean;
}

export interface PullRequestRef {
  url: string;
  number: number;
}

/** An issue or a pull (merge) request of a repository: where a comment goes. */
export interface ThreadRef {
  /** As in {@link PullRequestInput.repo}. */
  repo: string;
  /** The or the pull request's number (GitLab: its `iid`). */
  number: number;
  pullRequest: boolean;
}

/** What Patchbay does through one forge's API. */
export interface Forge {
  /** Opens a pull request; an open one for the same head is found, not duplicated. */
  openPullRequest(input: PullRequestInput): Promise<PullRequestRef>;
  /** Adds a comment to an issue or a pull request; resolves to the comment's URL. */
  comment(thread: ThreadRef, body: string): Promise<string>;
  /** The branch a pull request comes from. */
  pullRequestBranch(repo: string, number: number): Promise<string>;
}

export interface ForgeClientOptions {
  /** The API's base URL, e.g. `https://api.github.com`, `https://git.corp/api/v4`. */
  apiUrl: string;
  token: string;
  /** @default globalThis.fetch */
  fetch?: typeof fetch;
  /** @default 30_000 */
  timeoutMs?: number;
}

/** The forge answered with an error; the message says what it said (never the token). */
export function forgeError(forge: string, status: number, body: unknown): PatchbayError {
  const said =
    typeof body === 'object' && body !== null && 'message' in body
      ? String(body.message)
      : typeof body === 'string'
        ? body
        : JSON.stringify(body);
  const code = status === 401 || status === 403 ? 'delivery_auth_failed' : 'delivery_failed';
  return new PatchbayError(code, `${forge} answered ${status}: ${said.slice(0, 300)}`, {
    details: { forge, status },
    retryable: status === 429 || status >= 500,
  });
}

/** The branch a forge's answer names, or an error saying it named none. */
export function branchOf(forge: string, value: unknown): string {
  if (typeof value === 'string' && value !== '') return value;
  throw new PatchbayError(
    'delivery_failed',
    `${forge} answered with no branch for the pull request`,
  );
}

/** A JSON request to a forge's REST API. */
export async function forgeRequest(
  forge: string,
  options: ForgeClientOptions,
  auth: Record<string, string>,
  method: 'GET' | 'POST',
  path: string,
  body?: unknown,
): Promise<{ status: number; body: unknown }> {
  const doFetch = options.fetch ?? fetch;
  let response: Response;
  try {
    response = await doFetch(`${options.apiUrl}${path}`, {
      method,
      headers: {
        accept: 'application/json',
        'user-agent': 'Patchbay',
        ...auth,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      redirect: 'error',
      signal: AbortSignal.timeout(options.timeoutMs ?? 30_000),
    });
  } catch (err) {
    throw new PatchbayError(
      'delivery_failed',
      `${forge} API unreachable: ${(err as Error).message}`,
      {
        retryable: true,
      },
    );
  }
  const text = await response.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: kept as text for the error message.
  }
  return { status: response.status, body: parsed };
}
