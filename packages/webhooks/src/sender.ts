import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP, type LookupFunction } from 'node:net';
import type { CheckedWebhookUrl } from './url-policy.js';

/** What one POST came to. */
export interface SendOutcome {
  /** 2xx: the receiver took it. */
  ok: boolean;
  /** The HTTP status; null when no answer came (refused, timed out, reset). */
  statusCode: number | null;
  /** Why it did not arrive, for the delivery log. */
  error: string | null;
  durationMs: number;
}

/**
 * POSTs a JSON body to a checked URL, connecting only to the addresses its check resolved
 * (the name is still sent as Host and TLS server name). Redirects are not followed: a 3xx is a
 * failed delivery. The answer's body is read up to a few KiB and dropped.
 */
export function postJson(
  target: CheckedWebhookUrl,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<SendOutcome> {
  const started = Date.now();
  const address = target.addresses[0] ?? target.host;
  const family = isIP(address) === 6 ? 6 : 4;
  const pinned: LookupFunction = (_host, options, callback) => {
    if (options.all) callback(null, [{ address, family }]);
    else callback(null, address, family);
  };
  const request = target.scheme === 'https' ? httpsRequest : httpRequest;
  return new Promise((resolve) => {
    let settled = false;
    const done = (outcome: Omit<SendOutcome, 'durationMs'>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ...outcome, durationMs: Date.now() - started });
    };
    const req = request(
      target.url,
      {
        method: 'POST',
        lookup: pinned,
        headers: {
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(body)),
          'user-agent': 'Patchbay-Webhooks/1',
          ...headers,
        },
      },
      (res) => {
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > 16 * 1024) res.destroy();
        });
        const status = res.statusCode ?? 0;
        const finish = (): void =>
          done({
            ok: status >= 200 && status < 300,
            statusCode: status,
            error:
              status >= 200 && status < 300
                ? null
                : status >= 300 && status < 400
                  ? `redirect to ${String(res.headers.location ?? '?').slice(0, 200)} not followed`
                  : `HTTP ${status}`,
          });
        res.on('end', finish);
        res.on('close', finish);
        res.on('error', finish);
      },
    );
    const timer = setTimeout(() => {
      req.destroy();
      done({ ok: false, statusCode: null, error: `no answer within ${timeoutMs} ms` });
    }, timeoutMs);
    req.on('error', (err: NodeJS.ErrnoException) =>
      done({ ok: false, statusCode: null, error: err.code ?? err.message }),
    );
    req.end(body);
  });
}
