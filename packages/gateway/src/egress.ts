import { type Logger, silentLogger, specialRangeOfAnswer } from '@patchbay/core';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { once } from 'node:events';
import {
  type IncomingMessage,
  type Server,
  type ServerResponse,
  createServer,
  request as httpRequest,
} from 'node:http';
import {
  type AddressInfo,
  type Server as NetServer,
  type Socket,
  connect,
  createServer as createNetServer,
  isIP,
} from 'node:net';
import type { Duplex } from 'node:stream';

/** Why a request was refused, as a `network.blocked` event says. */
export type BlockReason = 'not_allowed' | 'private_address' | 'unresolved' | 'unknown_client';

export interface EgressBlock {
  host: string;
  port: number;
  reason: BlockReason;
}

export interface EgressProxyOptions {
  /** Where it listens: loopback, since only the worker connects to it (for its sandboxes). @default '127.0.0.1' */
  host?: string;
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

/** One sandbox's way to the proxy, as {@link EgressProxy.admit} gives it. */
export interface EgressAdmission {
  /** A new connection to the proxy, known as this client's. */
  connect(): Duplex;
  /** Ends the admission: later connections are nobody's, and refused. */
  release(): void;
}

/** Bytes of the line that names a connection's client; the rest of the stream is HTTP. */
const TICKET_BYTES = 24;
const TICKET_LINE = Buffer.byteLength(`${'x'.repeat(32)}\n`);
const TICKET_TIMEOUT_MS = 10_000;

/**
 * The egress proxy of sandboxes whose agent phase may reach a list of domains: an HTTP proxy
 * (CONNECT for HTTPS, absolute-form requests for plain HTTP). Only the worker connects to it,
 * on a sandbox's behalf: each connection starts with a ticket line of the admission it belongs
 * to, so the client is known by the way it came in, never by an address. A request is let
 * through only to a name its task allows, resolved by the proxy, to public addresses only (a
 * name the operator pinned aside), and the connection goes to the very address that was
 * checked. Every refusal is reported.
 */
export class EgressProxy {
  readonly #options: Required<Omit<EgressProxyOptions, 'log' | 'pinned' | 'resolve'>> & {
    log: Logger;
    pinned: Readonly<Record<string, string>>;
    resolve: (host: string) => Promise<string[]>;
  };
  /** Admissions by ticket. */
  readonly #clients = new Map<string, EgressClient>();
  /** The client of each connection, from its ticket. */
  readonly #owners = new WeakMap<Duplex, EgressClient>();
  readonly #sockets = new Set<Socket>();
  #server: NetServer | undefined;

  private constructor(options: EgressProxyOptions) {
    this.#options = {
      host: '127.0.0.1',
      port: 0,
      connectTimeoutMs: 10_000,
      log: silentLogger,
      pinned: {},
      resolve: defaultResolve,
      ...options,
    };
  }

  static async start(options: EgressProxyOptions = {}): Promise<EgressProxy> {
    const proxy = new EgressProxy(options);
    const http = createServer((req, res) => void proxy.#forward(req, res));
    http.on('connect', (req: IncomingMessage, socket: Socket, head: Buffer) => {
      void proxy.#connect(req, socket, head);
    });
    const server = createNetServer((socket) => {
      proxy.#sockets.add(socket);
      socket.once('close', () => proxy.#sockets.delete(socket));
      proxy.#ticket(socket, http);
    });
    server.listen(proxy.#options.port, proxy.#options.host);
    await once(server, 'listening');
    proxy.#server = server;
    return proxy;
  }

  /** `http://host:port`, where the proxy listens (on the worker). */
  get url(): string {
    const { address, port } = this.#server!.address() as AddressInfo;
    return `http://${address}:${port}`;
  }

  /** Lets one sandbox through to its task's domains, by the connections made for it. */
  admit(client: EgressClient): EgressAdmission {
    const ticket = randomBytes(TICKET_BYTES).toString('base64url');
    this.#clients.set(ticket, client);
    const { address, port } = this.#server!.address() as AddressInfo;
    return {
      connect: () => {
        const socket = connect({ host: address, port, allowHalfOpen: true });
        socket.write(`${ticket}\n`);
        return socket;
      },
      release: () => {
        this.#clients.delete(ticket);
      },
    };
  }

  async close(): Promise<void> {
    this.#clients.clear();
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Reads a connection's ticket line, then hands the rest to the HTTP server as the client's.
   * A connection without a known ticket is still served, as nobody's: every request refused.
   */
  #ticket(socket: Socket, http: Server): void {
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), TICKET_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const newline = head.indexOf(0x0a);
      if (newline < 0 && head.length < TICKET_LINE) return;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.pause();
      const line = newline < 0 ? '' : head.subarray(0, newline).toString('latin1');
      // A line that is no ticket is the request itself: served, as nobody's.
      const ticketed = /^[A-Za-z0-9_-]{32}$/.test(line);
      const client = ticketed ? this.#clients.get(line) : undefined;
      if (client !== undefined) this.#owners.set(socket, client);
      const rest = ticketed ? head.subarray(newline + 1) : head;
      if (rest.length > 0) socket.unshift(rest);
      http.emit('connection', socket);
      socket.resume();
    };
    socket.on('data', onData);
    socket.on('error', () => socket.destroy());
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
    const client = this.#owners.get(socket);
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

  async #forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const client = this.#owners.get(req.socket);
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
