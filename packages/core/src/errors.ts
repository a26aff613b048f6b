/**
 * Every failure Patchbay reports carries one of these codes: in API error bodies, on a failed
 * task's `error.code`, and in events. Codes are stable; messages are for people.
 */
export const ERROR_CODES = [
  // Requests
  'validation_error',
  'unauthorized',
  'not_found',
  'conflict',
  'patch_not_ready',
  'payload_too_large',
  'unsupported_media_type',
  'repo_url_refused',
  'policy_refused',
  /** An `Idempotency-Key` used again with another request body. */
  'idempotency_key_reused',
  'rate_limited',
  'unavailable',
  // Tasks
  'repo_unreachable',
  'ref_not_found',
  'repo_too_large',
  'setup_failed',
  'verify_failed',
  'model_error',
  'budget_exhausted',
  'timeout',
  'sandbox_error',
  'patch_too_large',
  'cancelled',
  /** The task's worker stopped (killed, crashed, lost its lock) on every try. */
  'worker_lost',
  /** The artifact store (the data directory, or the S3 bucket) failed a read or a write. */
  'storage_unavailable',
  // Delivery
  /** Delivery would push to the repository's default branch. */
  'branch_protected',
  /** The branch exists and was not made by this task. */
  'branch_exists',
  /** No push credential for the host, or the remote refused it. */
  'delivery_auth_failed',
  /** The push or the forge's API failed for another reason. */
  'delivery_failed',
  /** A webhook URL the SSRF policy refuses. */
  'webhook_url_refused',
  'internal_error',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export interface PatchbayErrorOptions {
  cause?: unknown;
  /** Extra, non-secret facts for the API body or event (limits, offending field, …). */
  details?: Record<string, unknown>;
  /**
   * The failure may pass on another try (e.g. the Docker engine could not be reached): a task
   * that meets it is retried while it has tries left, and fails with this code after the last.
   */
  retryable?: boolean;
}

/** The one error class with a stable code; HTTP status and retry policy are derived from the code. */
export class PatchbayError extends Error {
  override readonly name = 'PatchbayError';
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: PatchbayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }
}

export function isPatchbayError(err: unknown, code?: ErrorCode): err is PatchbayError {
  return err instanceof PatchbayError && (code === undefined || err.code === code);
}

/** The HTTP status an error code answers with, wherever it surfaces in a request. */
export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case 'validation_error':
      return 400;
    case 'unauthorized':
      return 401;
    case 'not_found':
      return 404;
    case 'conflict':
    case 'patch_not_ready':
    case 'branch_protected':
    case 'branch_exists':
      return 409;
    case 'payload_too_large':
    case 'patch_too_large':
    case 'repo_too_large':
      return 413;
    case 'unsupported_media_type':
      return 415;
    case 'repo_url_refused':
    case 'policy_refused':
    case 'idempotency_key_reused':
    case 'webhook_url_refused':
    case 'delivery_auth_failed':
      return 422;
    case 'rate_limited':
    case 'budget_exhausted':
      return 429;
    case 'unavailable':
    case 'sandbox_error':
    case 'storage_unavailable':
      return 503;
    case 'repo_unreachable':
    case 'model_error':
    case 'delivery_failed':
      return 502;
    case 'timeout':
      return 504;
    case 'ref_not_found':
    case 'setup_failed':
    case 'verify_failed':
    case 'cancelled':
      return 422;
    case 'worker_lost':
    case 'internal_error':
      return 500;
  }
}
