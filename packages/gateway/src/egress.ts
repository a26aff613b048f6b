import { type Logger, silentLogger, specialRangeOfAnswer } from '@patchbay/core';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import {
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer,
  request as httpRequest,
} from 'node:http';
import { type AddressInfo, type Socket, connect, isIP } from 'node:net';

/** Why a request was refused, as a `network.blocked` event says. */
export type BlockReason = 'not_allowed' | 'private_address' | 'unresolved' | 'unknown_client';

export interface EgressBlock {
  host: string;
  port: number;
  reason: BlockReason;
}

export interface EgressProxyOptions {
  /** The host's address on the sandboxes' internal network. */
  host: string;
  /** @default 0 (any free port) */
  port?: number;
  /**
   * Names the operator pins to addresses (`name → address`): used instead of DNS, and trusted
   * even when private (an internal mirror, say). @default none
   */
  pinned?: Readonly<Record<string, string>>;
  /** @default DNS (`dns.lookup`, every address) */
  resolve?: (host: string) => Promise<string[]>;
  /** Most time to connect upstream. @default 10 000 ms */
  connectTimeoutMs?: number;
  log?: Logger;
}

/** What one sandbox may reach, and where its refusals are reported. */
export interface EgressClient {
  taskId: string;
  /** Exact names, or `*.example.org` for every name under example.org (not itself). */
  domains: readonly string[];
  onBlocked: (block: EgressBlock) => void;
}

/** True when `host` (lower-case, no trailing dot) is one a pattern allows. */
export function domainAllowed(host: string, patterns: readonly string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return patterns.some((raw) => {
    const pattern = raw.toLowerCase();
    return pattern.startsWith('*.') ? name.endsWith(pattern.slice(1)) : name === pattern;
  });
}

const defaultResolve = async (host: string): Promise<string[]> =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

/**
 * The egress proxy of sandboxes whose agent phase may reach a list of domains: an HTTP proxy
 * (CONNECT for HTTPS, absolute-form requests for plain HTTP) on the internal network. Each client
 * is known by its address on that network; a request is let through only to a name its task
 * allows, resolved by the proxy, to public addresses only (a name the operator pinned aside),
 * and the connection goes to the very address that was checked. Every refusal is reported.
 */
export class EgressProxy {
  readonly #options: Required<Omit<EgressProxyOptions, 'log' | 'pinned' | 'resolve'>> & {
    log: Logger;
    pinned: Readonly<Record<string, string>>;
    resolve: (host: string) => Promise<string[]>;
  };
  readonly #clients = new Map<string, EgressClient>();
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;

  private constructor(options: EgressProxyOptions) {
    this.#options = {
      port: 0,
      connectTimeoutMs: 10_000,
      log: silentLogger,
      pinned: {},
      resolve: defaultResolve,
      ...options,
    };
  }

  static async start(options: EgressProxyOptions): Promise<EgressProxy> {
    const proxy = new EgressProxy(options);
    const server = createServer((req, res) => void proxy.#http(req, res));
    server.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      void proxy.#connect(req, socket, head);
    });
    server.on('connection', (socket: Socket) => {
      proxy.#sockets.add(socket);
      socket.once('close', () => proxy.#sockets.delete(socket));
    });
    server.listen(proxy.#options.port, proxy.#options.host);
    await once(server, 'listening');
    proxy.#server = server;
    return proxy;
  }

  /** `http://host:port`, as a sandbox on the network sets HTTPS_PROXY. */
  get url(): string {
    const { address, port } = this.#server!.address() as AddressInfo;
    return `http://${address}:${port}`;
  }

  /** Lets the sandbox at `address` through to its task's domains until the returned release. */
  admit(address: string, client: EgressClient): () => void {
    this.#clients.set(address, client);
    return () => {
      if (this.#clients.get(address) === client) this.#clients.delete(address);
    };
  }

  async close(): Promise<void> {
    this.#clients.clear();
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The address to connect to for `host`, or why not. */
  async #check(
    client: EgressClient | undefined,
    host: string,
    port: number,
  ): Promise<{ address: string } | EgressBlock> {
    const name = host.replace(/^\[|\]$/g, '').toLowerCase();
    if (client === undefined) return { host: name, port, reason: 'unknown_client' };
    if (!domainAllowed(name, client.domains)) return { host: name, port, reason: 'not_allowed' };
    const pinned = this.#options.pinned[name];
    if (pinned !== undefined) return { address: pinned };
    let addresses: string[];
    try {
      addresses = isIP(name) ? [name] : await this.#options.resolve(name);
    } catch {
      return { host: name, port, reason: 'unresolved' };
    }
    if (addresses.length === 0) return { host: name, port, reason: 'unresolved' };
    // Every answer must be public: a name that resolves to a private address (rebinding, or a
    // record made to point inside) is refused whole.
    if (addresses.some((a) => specialRangeOfAnswer(a) !== undefined))
      return { host: name, port, reason: 'private_address' };
    return { address: addresses[0]! };
  }

  #refuse(client: EgressClient | undefined, block: EgressBlock): void {
    this.#options.log.info({ taskId: client?.taskId, ...block }, 'egress refused');
    client?.onBlocked(block);
  }

  async #connect(req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const client = this.#clients.get(normalAddress(socket.remoteAddress));
    const target = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(req.url ?? '');
    if (!target) {
      socket.end('HTTP/1.1 400 Bad Request\r\n\r\n');
      return;
    }
    const [host, port] = [target[1]!, Number(target[2])];
    const checked = await this.#check(client, host, port);
    if (!('address' in checked)) {
      this.#refuse(client, checked);
      socket.end(
        `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\n\r\nPatchbay: ${checked.host}:${port} is not reachable from this task (${checked.reason})\n`,
      );
      return;
    }
    const upstream = connect({
      host: checked.address,
      port,
      timeout: this.#options.connectTimeoutMs,
    });
    upstream.once('timeout', () => upstream.destroy(new Error('connect timeout')));
    upstream.once('error', () => {
      if (!socket.destroyed) socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    });
    upstream.once('connect', () => {
      upstream.setTimeout(0);
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
      socket.once('close', () => upstream.destroy());
      upstream.once('close', () => socket.destroy());
    });
  }

  async #http(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = this.#clients.get(normalAddress(req.socket.remoteAddress));
    let url: URL;
    try {
      url = new URL(req.url ?? '');
      if (url.protocol !== 'http:') throw new Error('not http');
    } catch {
      res.writeHead(400, { 'content-type': 'text/plain' });
      res.end('Patchbay: send absolute http:// URLs, or CONNECT for https\n');
      return;
    }
    const port = Number(url.port || 80);
    const checked = await this.#check(client, url.hostname, port);
    if (!('address' in checked)) {
      this.#refuse(client, checked);
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(
        `Patchbay: ${checked.host}:${port} is not reachable from this task (${checked.reason})\n`,
      );
      return;
    }
    const headers = { ...req.headers };
    delete headers['proxy-authorization'];
    delete headers['proxy-connection'];
    const upstream = httpRequest({
      host: checked.address,
      port,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      headers: { ...headers, host: url.host },
      timeout: this.#options.connectTimeoutMs,
    });
    upstream.once('response', (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.once('timeout', () => upstream.destroy(new Error('timeout')));
    upstream.once('error', () => {
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
    req.pipe(upstream);
  }
}

/** `::ffff:172.18.0.2` → `172.18.0.2`. */
function normalAddress(address: string | undefined): string {
  return (address ?? '').replace(/^::ffff:/, '');
}
