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

/** One forge's pull-request API. An open request for the same head is found, not duplicated. */
export interface Forge {
  openPullRequest(input: PullRequestInput): Promise<PullRequestRef>;
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
