import { isIP } from 'node:net';
import { formatIPv4, formatIPv6, looksLikeIPv4, parseIPv4Loose, parseIPv6 } from './ip.js';

/**
 * The syntax of repository hosts, shared by the configuration (PATCHBAY_REPO_HOSTS is checked
 * when the process starts) and the repository URL policy (packages/git), which matches URLs
 * against the parsed entries.
 */

export type HostScheme = 'https' | 'http' | 'ssh';

/** One parsed entry of the repository host list. */
export interface HostRule {
  /** The entry as the operator wrote it, for messages. */
  entry: string;
  /** `default`: an entry without scheme (https, plus ssh when enabled). */
  scheme: HostScheme | 'default';
  /** Exact host, or `*.suffix` / `*`. */
  host: string;
  /** The port allowed; the scheme's default when the entry names none. */
  port: number | undefined;
  /** Named exactly, as opposed to matched by a wildcard. */
  exact: boolean;
  /** The entry names a special address itself (an IP literal, or localhost). */
  namesAddress: boolean;
}

/** A host that is not one: `reason` is the URL policy's refusal code. */
export class HostSyntaxError extends Error {
  constructor(
    readonly reason: 'invalid_host' | 'option_injection',
    message: string,
  ) {
    super(message);
    this.name = 'HostSyntaxError';
  }
}

/**
 * Lower-cases a host, drops one trailing dot, and reads numeric hosts the way curl and
 * getaddrinfo do (every IPv4 spelling becomes a dotted quad; IPv6 becomes its canonical form),
 * so that `0x7f.1`, `2130706433.` and `127.0.0.1` are one host to the allowlist and range checks.
 */
export function normaliseHost(raw: string): string {
  const bad = (message: string) => new HostSyntaxError('invalid_host', message);
  if (raw.startsWith('[')) {
    if (!raw.endsWith(']')) throw bad('the IPv6 address has no closing ]');
    const inner = raw.slice(1, -1);
    // A zone id (%eth0) only ever names a link-local interface of this machine.
    const value = inner.includes('%') ? undefined : parseIPv6(inner);
    if (value === undefined) throw bad('not a valid IPv6 address');
    return formatIPv6(value);
  }
  let host = raw.toLowerCase();
  if (host.endsWith('.')) host = host.slice(0, -1);
  if (host === '') throw bad('the host is empty');
  if (host.startsWith('-')) {
    throw new HostSyntaxError(
      'option_injection',
      'the host starts with "-", which git and ssh read as an option',
    );
  }
  if (looksLikeIPv4(host)) {
    const value = parseIPv4Loose(host);
    if (value === undefined) throw bad('the host is neither a name nor an IPv4 address');
    return formatIPv4(value);
  }
  if (host.length > 253) throw bad('the host name is longer than 253 characters');
  for (const label of host.split('.')) {
    if (!/^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label)) {
      throw bad('the host is not a valid DNS name');
    }
  }
  return host;
}

/**
 * Parses one entry of the repository host list: `[scheme://]host[:port]`, the host being a name,
 * an address, `*.suffix` or `*`. Throws {@link HostSyntaxError} naming the entry.
 */
export function parseHostRule(entry: string): HostRule {
  const bad = (why: string) =>
    new HostSyntaxError('invalid_host', `repository host entry "${entry}": ${why}`);
  const normalise = (raw: string): string => {
    try {
      return normaliseHost(raw);
    } catch (err) {
      throw bad(err instanceof Error ? err.message : String(err));
    }
  };
  const text = entry.trim().toLowerCase().replace(/\/+$/, '');
  const match = /^(?:([a-z]+):\/\/)?(\*|\*\.[^/:[\]]+|\[[^\]]+\]|[^/:[\]*]+)(?::(\d+))?$/.exec(
    text,
  );
  if (!match)
    throw bad('expected [scheme://]host[:port], host being a name, an address or *.suffix');
  const rawScheme = match[1];
  const rawHost = match[2]!;
  const rawPort = match[3];
  if (rawScheme !== undefined && !['https', 'http', 'ssh'].includes(rawScheme)) {
    throw bad('the scheme must be https, http or ssh');
  }
  const scheme = (rawScheme ?? 'default') as HostRule['scheme'];
  const port = rawPort === undefined ? undefined : Number(rawPort);
  if (port !== undefined && (port < 1 || port > 65535)) throw bad('the port is out of range');
  if (rawHost === '*' || rawHost.startsWith('*.')) {
    if (scheme === 'http') throw bad('plain http is only allowed to hosts named exactly');
    const suffix = rawHost === '*' ? '*' : `*.${normalise(rawHost.slice(2))}`;
    return { entry, scheme, host: suffix, port, exact: false, namesAddress: false };
  }
  const host = normalise(rawHost);
  const namesAddress = isIP(host) !== 0 || host === 'localhost' || host.endsWith('.localhost');
  return { entry, scheme, host, port, exact: true, namesAddress };
}
