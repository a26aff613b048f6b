import { once } from 'node:events';
import { createServer as createHttpServer, request } from 'node:http';
import { type AddressInfo, connect, createServer } from 'node:net';
import type { Duplex } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { type EgressAdmission, EgressProxy, type EgressBlock, domainAllowed } from './egress.js';

let proxy: EgressProxy | undefined;
let admission: EgressAdmission | undefined;
const closers: (() => void)[] = [];

afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
  for (const close of closers.splice(0)) close();
});

/** A TCP server on 127.0.0.1 that answers every connection with a greeting. */
async function greeter(): Promise<number> {
  const server = createServer((socket) => socket.end('hello through the tunnel\n'));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  closers.push(() => server.close());
  return (server.address() as AddressInfo).port;
}

/**
 * Sends `CONNECT host:port` to the proxy, through the admission's way in (or straight, as
 * nobody's), and returns its status line and what follows.
 */
async function tunnel(
  target: string,
  through: EgressAdmission | null | undefined = admission,
): Promise<string> {
  const url = new URL(proxy!.url);
  const socket: Duplex =
    through?.connect() ?? connect({ host: url.hostname, port: Number(url.port) });
  socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
  let text = '';
  socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
  // The proxy's side ends (an admission's connections are half-open: the sandbox may still send).
  await once(socket, 'end');
  socket.destroy();
  return text;
}

async function start(
  domains: string[],
  options: { resolve?: (host: string) => Promise<string[]>; pinned?: Record<string, string> },
): Promise<EgressBlock[]> {
  proxy = await EgressProxy.start(options);
  const blocked: EgressBlock[] = [];
  admission = proxy.admit({ taskId: 't1', domains, onBlocked: (b) => blocked.push(b) });
  return blocked;
}

describe('EgressProxy', () => {
  it('tunnels to an allowed name, connecting to the address it checked', async () => {
    const port = await greeter();
    await start(['mirror.test'], { pinned: { 'mirror.test': '127.0.0.1' } });
    const answer = await tunnel(`mirror.test:${port}`);
    expect(answer).toMatch(/^HTTP\/1\.1 200 Connection Established\r\n\r\n/);
    expect(answer).toContain('hello through the tunnel');
  });

  it('refuses a name not on the list, an IP literal, and an unknown client, reporting each', async () => {
    const port = await greeter();
    const blocked = await start(['mirror.test', '*.pypi.test'], {
      pinned: { 'mirror.test': '127.0.0.1' },
    });
    expect(await tunnel(`evil.test:${port}`)).toMatch(/^HTTP\/1\.1 403/);
    expect(await tunnel(`127.0.0.1:${port}`)).toMatch(/^HTTP\/1\.1 403/);
    expect(await tunnel(`[::1]:${port}`)).toMatch(/^HTTP\/1\.1 403/);
    expect(blocked).toEqual([
      { host: 'evil.test', port, reason: 'not_allowed' },
      { host: '127.0.0.1', port, reason: 'not_allowed' },
      { host: '::1', port, reason: 'not_allowed' },
    ]);
    // A connection without a ticket is nobody's, and so is one of a released admission.
    expect(await tunnel(`mirror.test:${port}`, null)).toMatch(/^HTTP\/1\.1 403/);
    admission!.release();
    expect(await tunnel(`mirror.test:${port}`)).toMatch(/^HTTP\/1\.1 403/);
    // Neither is the task's: its log hears nothing of them.
    expect(blocked).toHaveLength(3);
  });

  it('refuses an allowed name that resolves to a private address, whichever answer it is', async () => {
    const blocked = await start(['files.pypi.test', 'rebind.test'], {
      resolve: async (host) =>
        host === 'files.pypi.test' ? ['127.0.0.1'] : ['93.184.216.34', '169.254.169.254'],
    });
    expect(await tunnel('files.pypi.test:443')).toMatch(/^HTTP\/1\.1 403/);
    expect(await tunnel('rebind.test:443')).toMatch(/^HTTP\/1\.1 403/);
    expect(blocked.map((b) => b.reason)).toEqual(['private_address', 'private_address']);
  });

  it('forwards a plain http request for an allowed name, and refuses one for another', async () => {
    const server = createHttpServer((req, res) => res.end(`seen host ${req.headers.host}`));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(() => server.close());
    const port = (server.address() as AddressInfo).port;
    const blocked = await start(['mirror.test'], { pinned: { 'mirror.test': '127.0.0.1' } });
    const get = (target: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request(
          { createConnection: () => admission!.connect(), path: target },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode!, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect(await get(`http://mirror.test:${port}/x`)).toEqual({
      status: 200,
      body: `seen host mirror.test:${port}`,
    });
    expect((await get(`http://other.test:${port}/x`)).status).toBe(403);
    expect(blocked).toEqual([{ host: 'other.test', port, reason: 'not_allowed' }]);
  });
});

describe('domainAllowed', () => {
  it('matches exact names, and *.suffix for the names under it only', () => {
    expect(domainAllowed('registry.npmjs.org', ['registry.npmjs.org'])).toBe(true);
    expect(domainAllowed('Registry.NPMJS.org.', ['registry.npmjs.org'])).toBe(true);
    expect(domainAllowed('files.pypi.org', ['*.pypi.org'])).toBe(true);
    expect(domainAllowed('pypi.org', ['*.pypi.org'])).toBe(false);
    expect(domainAllowed('evilpypi.org', ['*.pypi.org'])).toBe(false);
    expect(domainAllowed('npmjs.org.evil.test', ['npmjs.org'])).toBe(false);
  });
});
