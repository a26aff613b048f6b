import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  HostSyntaxError,
  PatchbayError,
  normaliseHost as normaliseHostSyntax,
  parseHostRule,
  specialRangeOf,
  specialRangeOfAnswer,
  type HostRule,
  type HostScheme,
  type SpecialRange,
} from '@patchbay/core';

/** Hosts tasks may fetch from when the operator lists none. */
const DEFAULT_REPO_HOSTS: readonly string[] = ['github.com', 'gitlab.com', 'bitbucket.org'];

/**
 * Why a repository URL was refused; `details.reason` of the `repo_url_refused` error. Stable:
 * clients and tests match on it.
 */
export type RepoUrlRefusal =
  | 'invalid_url'
  | 'too_long'
  | 'control_character'
  | 'non_ascii'
  | 'option_injection'
  | 'transport_helper'
  | 'local_path'
  | 'scheme_not_allowed'
  | 'ssh_disabled'
  | 'credentials'
  | 'query_or_fragment'
  | 'invalid_host'
  | 'invalid_port'
  | 'invalid_path'
  | 'host_not_allowed'
  | 'port_not_allowed'
  | 'private_address'
  | 'resolves_to_private_address';

export interface RepoUrlPolicyOptions {
  /**
   * Where repositories may come from. Each entry is `[scheme://]host[:port]`:
   * - `github.com` — https on port 443 (and ssh on port 22 when {@link allowSsh} is on);
   * - `https://git.example.com:8443` — https on that port only;
   * - `http://127.0.0.1:8080`, `http://localhost` — plain http, only ever for hosts listed so;
   * - `ssh://git.example.com:2222` — ssh on that port (needs {@link allowSsh});
   * - `*.example.com` (subdomains) and `*` (any host) — https, for hosts an operator cannot list
   *   one by one. Hosts matched by a wildcard must never be, or resolve to, a private, loopback,
   *   link-local, metadata or otherwise special address.
   * @default DEFAULT_REPO_HOSTS (github.com, gitlab.com, bitbucket.org)
   */
  hosts?: readonly string[];
  /**
   * Allow `ssh://` and scp-like `git@host:path` URLs to the listed hosts.
   * @default false
   */
  allowSsh?: boolean;
  /**
   * A host the operator named exactly (no wildcard) may resolve to a private address: naming it
   * is the operator vouching for where it points (an internal GitLab, say). The range check
   * guards the hosts an attacker gets to choose, those matched by `*` or `*.suffix`. Turn this
   * off to hold named hosts to public addresses too; IP-literal entries and `localhost`, which
   * name their address outright, stay allowed either way.
   * @default true
   */
  trustListedHosts?: boolean;
}

type Scheme = HostScheme;

const DEFAULT_PORTS: Record<Scheme, number> = { https: 443, http: 80, ssh: 22 };

/** A policy with its host entries parsed once; make it at startup with {@link compileRepoUrlPolicy}. */
export class RepoUrlPolicy {
  /**
   * URLs this policy accepted, with what they matched, oldest first: a server sees the same
   * repositories again and again, and parsing and matching one cost a submit 2-3 % of its CPU.
   * Refusals are not kept, nor anything DNS says.
   */
  readonly #accepted = new Map<string, Readonly<Matched>>();

  /** @internal */
  constructor(
    readonly rules: readonly HostRule[],
    readonly allowSsh: boolean,
    readonly trustListedHosts: boolean,
  ) {}

  /** @internal The URL parsed and matched against the rules; throws a `Refusal`. */
  match(url: string): Readonly<Matched> {
    const known = this.#accepted.get(url);
    if (known !== undefined) return known;
    const matched = matchPolicy(url, this);
    Object.freeze(matched.parsed);
    Object.freeze(matched);
    if (this.#accepted.size >= ACCEPTED_URLS_KEPT) {
      this.#accepted.delete(this.#accepted.keys().next().value as string);
    }
    this.#accepted.set(url, matched);
    return matched;
  }
}

/** How many accepted URLs a policy remembers. */
const ACCEPTED_URLS_KEPT = 1024;

/** Resolves a host name to every address it has; the default is `dns.promises.lookup` (all). */
export type HostResolver = (
  hostname: string,
) => Promise<readonly { address: string; family: number }[]>;

export const defaultResolver: HostResolver = (hostname) =>
  lookup(hostname, { all: true, verbatim: true });

/** An accepted URL, normalised: what git is given, and what it may connect to. */
export interface CheckedRepoUrl {
  ok: true;
  /**
   * The URL to hand git: lower-case host without trailing dot, IPv4 literals in dotted form,
   * default port dropped, trailing slashes dropped. Also the mirror cache's key.
   */
  url: string;
  scheme: Scheme;
  /** Normalised host: a name, a dotted IPv4 address or an IPv6 address without brackets. */
  host: string;
  port: number;
  /**
   * Addresses the host resolved to when it was checked (the literal itself for an IP host; empty
   * from {@link checkRepoUrlSyntax}, which does not resolve). Pin git to them so a second DNS
   * answer cannot point it somewhere else.
   */
  addresses: readonly string[];
}

export interface RefusedRepoUrl {
  ok: false;
  /** `repo_url_refused` with `details.reason`, or `repo_unreachable` when DNS had no answer. */
  error: PatchbayError;
}

export type RepoUrlCheck = CheckedRepoUrl | RefusedRepoUrl;

/** Longest URL considered at all. */
const MAX_URL_LENGTH = 2048;

class Refusal extends Error {
  constructor(
    readonly reason: RepoUrlRefusal,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

const refuse = (reason: RepoUrlRefusal, message: string, extra?: Record<string, unknown>) =>
  new Refusal(reason, message, extra);

/**
 * Parses the host entries of a policy. Call once at startup: a bad entry is a configuration
 * error and throws `validation_error` naming it.
 */
export function compileRepoUrlPolicy(options: RepoUrlPolicyOptions = {}): RepoUrlPolicy {
  const rules = (options.hosts ?? DEFAULT_REPO_HOSTS).map((entry) => {
    try {
      return parseHostRule(entry);
    } catch (err) {
      if (!(err instanceof HostSyntaxError)) throw err;
      throw new PatchbayError('validation_error', err.message, { details: { entry } });
    }
  });
  return new RepoUrlPolicy(rules, options.allowSsh ?? false, options.trustListedHosts ?? true);
}

/** A URL's host, normalised ({@link normaliseHostSyntax}), or a refusal saying why not. */
function normaliseHost(raw: string): string {
  try {
    return normaliseHostSyntax(raw);
  } catch (err) {
    if (err instanceof HostSyntaxError) throw refuse(err.reason, err.message);
    throw err;
  }
}

interface ParsedUrl {
  scheme: Scheme;
  /** ssh only: the login name. */
  user: string | undefined;
  host: string;
  port: number;
  /** https/http/ssh URLs: absolute path; scp-like: the path as written after the colon. */
  path: string;
  scpLike: boolean;
}

/** Characters a repository path may hold: RFC 3986 unreserved, plus / @ + : (no %, ?, #). */
const PATH_CHARS = /^[A-Za-z0-9._~/@+:-]*$/;

function checkPath(path: string, scpLike: boolean): string {
  if (path.includes('?') || path.includes('#')) {
    throw refuse('query_or_fragment', 'a repository URL has no query or fragment');
  }
  const trimmed = path.replace(/\/+$/, '');
  const segments = (scpLike ? trimmed : trimmed.slice(1)).split('/');
  if (segments.every((s) => s === '')) throw refuse('invalid_path', 'the URL names no repository');
  for (const segment of segments) {
    if (segment.startsWith('-')) throw refuse('option_injection', 'a path segment starts with "-"');
    if (segment === '' || segment === '.' || segment === '..') {
      throw refuse('invalid_path', 'the path has empty, "." or ".." segments');
    }
  }
  if (!PATH_CHARS.test(path)) {
    throw refuse('invalid_path', 'the path holds characters a repository path does not need');
  }
  return trimmed;
}

function parseSsh(user: string | undefined): string | undefined {
  if (user === undefined) return undefined;
  if (user.includes(':')) throw refuse('credentials', 'the URL carries a password');
  if (user.startsWith('-')) throw refuse('option_injection', 'the user name starts with "-"');
  if (!/^[A-Za-z0-9_][A-Za-z0-9._-]{0,31}$/.test(user)) {
    throw refuse('invalid_url', 'the ssh user name is not a plain login name');
  }
  return user;
}

function parsePort(raw: string | undefined, scheme: Scheme): number {
  if (raw === undefined) return DEFAULT_PORTS[scheme];
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw refuse('invalid_port', 'the port is not a number from 1 to 65535');
  }
  return Number(raw);
}

/** Syntax only: everything that can be said about a URL without a policy or DNS. */
function parseRepoUrl(input: string): ParsedUrl {
  if (input.length > MAX_URL_LENGTH) {
    throw refuse('too_long', `the URL is longer than ${MAX_URL_LENGTH} characters`);
  }
  if (input.length === 0) throw refuse('invalid_url', 'the URL is empty');
  // Whitespace, controls and invisible format characters (bidi overrides, zero-width) can
  // split an argument, forge a log line or show a reviewer a different URL than git fetches.
  if (/[\s\p{Cc}\p{Cf}]/u.test(input)) {
    throw refuse('control_character', 'the URL contains whitespace or control characters');
  }
  if (input.startsWith('-')) {
    throw refuse('option_injection', 'the URL starts with "-", which git reads as an option');
  }
  if (/[^\x21-\x7e]/.test(input)) {
    throw refuse('non_ascii', 'the URL must be ASCII (IDN hosts in punycode)');
  }
  // git's remote helpers: `ext::` runs a command, `fd::` talks over a file descriptor, and any
  // `<transport>::<address>` picks a helper program by name.
  if (/^[A-Za-z0-9][A-Za-z0-9+.-]*::/.test(input)) {
    throw refuse('transport_helper', 'git remote helpers (<transport>::<address>) are not allowed');
  }
  if (input.includes('\\')) {
    throw refuse('invalid_url', 'backslashes are read differently by different URL parsers');
  }

  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(input);
  if (!schemeMatch) return parseScpLike(input);
  const rawScheme = schemeMatch[1]!.toLowerCase();
  const rest = input.slice(schemeMatch[0].length);
  let scheme: Scheme;
  if (rawScheme === 'https' || rawScheme === 'http') scheme = rawScheme;
  else if (rawScheme === 'ssh' || rawScheme === 'git+ssh' || rawScheme === 'ssh+git')
    scheme = 'ssh';
  else if (rawScheme === 'file')
    throw refuse('local_path', "file:// URLs read this machine's disk");
  else throw refuse('scheme_not_allowed', `the ${rawScheme}:// scheme is not allowed`);

  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  const path = authorityEnd < 0 ? '' : rest.slice(authorityEnd);
  if (path === '' || path.startsWith('?') || path.startsWith('#')) {
    if (path !== '') throw refuse('query_or_fragment', 'a repository URL has no query or fragment');
    throw refuse('invalid_path', 'the URL names no repository');
  }
  let hostPort = authority;
  let user: string | undefined;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    const userinfo = authority.slice(0, at);
    hostPort = authority.slice(at + 1);
    if (scheme !== 'ssh' || userinfo.includes('@')) {
      throw refuse('credentials', 'credentials in the URL are not allowed');
    }
    user = parseSsh(userinfo);
  }
  const hp = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort)!;
  const host = normaliseHost(hp[1]!);
  const port = parsePort(hp[2], scheme);
  return { scheme, user, host, port, path: checkPath(path, false), scpLike: false };
}

/** `[user@]host:path`, which git reads as ssh; anything else without a scheme is a local path. */
function parseScpLike(input: string): ParsedUrl {
  const colon = input.indexOf(':');
  const slash = input.indexOf('/');
  // git's own rule: a colon before any slash makes it scp-like; otherwise it is a path.
  if (colon < 0 || (slash >= 0 && slash < colon)) {
    throw refuse('local_path', 'local paths are not repository URLs');
  }
  const authority = input.slice(0, colon);
  const path = input.slice(colon + 1);
  const at = authority.lastIndexOf('@');
  const user = parseSsh(at >= 0 ? authority.slice(0, at) : undefined);
  const rawHost = at >= 0 ? authority.slice(at + 1) : authority;
  if (rawHost.startsWith('[')) {
    throw refuse('invalid_host', 'write bracketed hosts as ssh://[host]:port/path');
  }
  const host = normaliseHost(rawHost);
  if (path.startsWith('/')) {
    // Absolute scp paths are fine; checkPath wants relative segments.
    return {
      scheme: 'ssh',
      user,
      host,
      port: 22,
      path: `/${checkPath(path.replace(/^\/+/, ''), true)}`,
      scpLike: true,
    };
  }
  return { scheme: 'ssh', user, host, port: 22, path: checkPath(path, true), scpLike: true };
}

function hostMatches(rule: HostRule, host: string): boolean {
  if (rule.host === '*') return true;
  if (rule.host.startsWith('*.')) return host.endsWith(rule.host.slice(1)) && isIP(host) === 0;
  return rule.host === host;
}

function schemeAndPortMatch(rule: HostRule, url: ParsedUrl): boolean {
  switch (rule.scheme) {
    case 'default':
      if (url.scheme === 'https') return url.port === (rule.port ?? DEFAULT_PORTS.https);
      return url.scheme === 'ssh' && rule.port === undefined && url.port === DEFAULT_PORTS.ssh;
    case 'https':
    case 'http':
    case 'ssh':
      return url.scheme === rule.scheme && url.port === (rule.port ?? DEFAULT_PORTS[rule.scheme]);
  }
}

function formatUrl(url: ParsedUrl): string {
  const host = isIP(url.host) === 6 ? `[${url.host}]` : url.host;
  const user = url.user === undefined ? '' : `${url.user}@`;
  if (url.scpLike) return `${user}${host}:${url.path}`;
  const port = url.port === DEFAULT_PORTS[url.scheme] ? '' : `:${url.port}`;
  return `${url.scheme}://${user}${host}${port}${url.path}`;
}

interface Matched {
  parsed: ParsedUrl;
  rule: HostRule;
}

function matchPolicy(input: string, policy: RepoUrlPolicy): Matched {
  const parsed = parseRepoUrl(input);
  if (parsed.scheme === 'ssh' && !policy.allowSsh) {
    throw refuse('ssh_disabled', 'ssh repository URLs are not enabled on this server');
  }
  const sameHost = policy.rules.filter((rule) => hostMatches(rule, parsed.host));
  if (sameHost.length === 0) {
    throw refuse('host_not_allowed', `${parsed.host} is not an allowed repository host`, {
      host: parsed.host,
    });
  }
  // An exact entry outranks a wildcard: it is what the operator said about this very host.
  const rule =
    sameHost.find((r) => r.exact && schemeAndPortMatch(r, parsed)) ??
    sameHost.find((r) => schemeAndPortMatch(r, parsed));
  if (!rule) {
    const schemeOk = sameHost.some(
      (r) => r.scheme === parsed.scheme || (r.scheme === 'default' && parsed.scheme !== 'http'),
    );
    if (!schemeOk) {
      throw refuse('scheme_not_allowed', `${parsed.scheme}:// is not allowed to ${parsed.host}`, {
        host: parsed.host,
      });
    }
    throw refuse('port_not_allowed', `port ${parsed.port} is not allowed on ${parsed.host}`, {
      host: parsed.host,
    });
  }
  const literal = isIP(parsed.host) !== 0;
  const loopbackName = parsed.host === 'localhost' || parsed.host.endsWith('.localhost');
  if ((literal || loopbackName) && !rule.exact) {
    const range: SpecialRange | undefined = loopbackName
      ? { kind: 'loopback', cidr: 'localhost' }
      : specialRangeOf(parsed.host);
    if (range) {
      throw refuse('private_address', `${parsed.host} is a ${describe(range)} address`, {
        host: parsed.host,
        range: range.cidr,
      });
    }
  }
  return { parsed, rule };
}

function describe(range: SpecialRange): string {
  return range.kind.replace('_', '-');
}

function toRefused(err: unknown): RefusedRepoUrl {
  if (err instanceof Refusal) {
    return {
      ok: false,
      error: new PatchbayError('repo_url_refused', `repository URL refused: ${err.message}`, {
        details: { reason: err.reason, ...err.extra },
      }),
    };
  }
  throw err;
}

function resolvePolicy(policy: RepoUrlPolicy | RepoUrlPolicyOptions | undefined): RepoUrlPolicy {
  return policy instanceof RepoUrlPolicy ? policy : compileRepoUrlPolicy(policy);
}

/**
 * Every check that needs no DNS: syntax, scheme, credentials, option injection, allowlist and
 * IP-literal ranges. Cheap and synchronous, for validating a request before it is queued;
 * `addresses` is empty for names (the literal for IP hosts).
 */
export function checkRepoUrlSyntax(
  url: string,
  policy?: RepoUrlPolicy | RepoUrlPolicyOptions,
): RepoUrlCheck {
  try {
    const { parsed } = resolvePolicy(policy).match(url);
    return checked(parsed, isIP(parsed.host) !== 0 ? [parsed.host] : []);
  } catch (err) {
    return toRefused(err);
  }
}

function checked(parsed: ParsedUrl, addresses: readonly string[]): CheckedRepoUrl {
  return {
    ok: true,
    url: formatUrl(parsed),
    scheme: parsed.scheme,
    host: parsed.host,
    port: parsed.port,
    addresses,
  };
}

/**
 * Decides whether git may fetch `url`, before anything connects anywhere: every check of
 * {@link checkRepoUrlSyntax}, then the host is resolved (through `resolver`) and every address it
 * has must be public, unless the host was named exactly in the policy (see
 * {@link RepoUrlPolicyOptions.trustListedHosts}). Pass the returned `addresses` on to git
 * ({@link CheckedRepoUrl.addresses}) so it cannot be sent elsewhere by a second DNS answer.
 *
 * @returns the normalised URL, or `{ ok: false, error }` with `repo_url_refused` (and
 * `details.reason`) or, when the name does not resolve, `repo_unreachable`.
 */
export async function checkRepoUrl(
  url: string,
  policy?: RepoUrlPolicy | RepoUrlPolicyOptions,
  resolver: HostResolver = defaultResolver,
): Promise<RepoUrlCheck> {
  const compiled = resolvePolicy(policy);
  let matched: Readonly<Matched>;
  try {
    matched = compiled.match(url);
  } catch (err) {
    return toRefused(err);
  }
  const { parsed, rule } = matched;
  if (isIP(parsed.host) !== 0) return checked(parsed, [parsed.host]);

  let answers: readonly { address: string }[];
  try {
    answers = await resolver(parsed.host);
  } catch (err) {
    return unresolvable(parsed.host, err);
  }
  if (answers.length === 0) return unresolvable(parsed.host, undefined);
  const addresses = [...new Set(answers.map((a) => a.address))];
  const trusted = rule.exact && (rule.namesAddress || compiled.trustListedHosts);
  if (!trusted) {
    for (const address of addresses) {
      const range = specialRangeOfAnswer(address);
      if (range) {
        return toRefused(
          refuse(
            'resolves_to_private_address',
            `${parsed.host} resolves to ${address}, a ${describe(range)} address`,
            { host: parsed.host, address, range: range.cidr },
          ),
        );
      }
    }
  }
  return checked(parsed, addresses);
}

function unresolvable(host: string, cause: unknown): RefusedRepoUrl {
  const code = (cause as { code?: unknown } | undefined)?.code;
  return {
    ok: false,
    error: new PatchbayError('repo_unreachable', `the repository host ${host} does not resolve`, {
      cause,
      details: { reason: 'dns', host, ...(typeof code === 'string' ? { dnsError: code } : {}) },
    }),
  };
}
