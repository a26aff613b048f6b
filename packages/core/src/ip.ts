import { isIPv4, isIPv6 } from 'node:net';

/** Why an address is not a public unicast one. */
export type SpecialAddressKind =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'multicast'
  | 'documentation'
  | 'benchmark'
  | 'reserved';

/** The special range an address falls in. */
export interface SpecialRange {
  kind: SpecialAddressKind;
  /** The range, e.g. `169.254.0.0/16`. */
  cidr: string;
}

interface V4Range {
  base: number;
  bits: number;
  kind: SpecialAddressKind;
}

const v4 = (cidr: string, kind: SpecialAddressKind): V4Range => {
  const [base, bits] = cidr.split('/') as [string, string];
  return { base: parseDottedQuad(base)!, bits: Number(bits), kind };
};

/**
 * IPv4 ranges a repository host must never be in (IANA special-purpose registry). Cloud metadata
 * services live in two of them: 169.254.169.254 (link-local) and 100.100.100.200 (CGNAT).
 */
const V4_SPECIAL: readonly V4Range[] = [
  v4('0.0.0.0/8', 'unspecified'),
  v4('10.0.0.0/8', 'private'),
  v4('100.64.0.0/10', 'cgnat'),
  v4('127.0.0.0/8', 'loopback'),
  v4('169.254.0.0/16', 'link_local'),
  v4('172.16.0.0/12', 'private'),
  v4('192.0.0.0/24', 'reserved'),
  v4('192.0.2.0/24', 'documentation'),
  v4('192.88.99.0/24', 'reserved'),
  v4('192.168.0.0/16', 'private'),
  v4('198.18.0.0/15', 'benchmark'),
  v4('198.51.100.0/24', 'documentation'),
  v4('203.0.113.0/24', 'documentation'),
  v4('224.0.0.0/4', 'multicast'),
  v4('240.0.0.0/4', 'reserved'),
];

interface V6Range {
  base: bigint;
  bits: number;
  kind: SpecialAddressKind | 'embeds_v4';
  /** For `embeds_v4`: bit offset (from the left) of the embedded IPv4 address. */
  v4At?: number;
}

const v6 = (cidr: string, kind: V6Range['kind'], v4At?: number): V6Range => {
  const [base, bits] = cidr.split('/') as [string, string];
  const range: V6Range = { base: parseIPv6(base)!, bits: Number(bits), kind };
  if (v4At !== undefined) range.v4At = v4At;
  return range;
};

/**
 * IPv6 ranges, most specific first. Only global unicast (2000::/3) can be public; inside it the
 * special blocks are refused, and the translation prefixes are judged by the IPv4 address they
 * carry: NAT64 (DNS64 hands out 64:ff9b::<v4> for IPv4-only hosts such as github.com on an
 * IPv6-only worker) and 6to4. IPv4-mapped addresses are judged the same way, because a socket
 * connecting to ::ffff:127.0.0.1 reaches 127.0.0.1.
 */
const V6_SPECIAL: readonly V6Range[] = [
  v6('::/128', 'unspecified'),
  v6('::1/128', 'loopback'),
  v6('::ffff:0:0/96', 'embeds_v4', 96),
  v6('64:ff9b::/96', 'embeds_v4', 96),
  v6('2002::/16', 'embeds_v4', 16),
  v6('2001:db8::/32', 'documentation'),
  v6('2001:2::/48', 'benchmark'),
  // IETF protocol assignments, Teredo (2001::/32, which can tunnel to any IPv4 address) among them.
  v6('2001::/23', 'reserved'),
  v6('3fff::/20', 'documentation'),
  v6('5f00::/16', 'reserved'),
  v6('fc00::/7', 'private'),
  v6('fe80::/10', 'link_local'),
  v6('fec0::/10', 'private'),
  v6('ff00::/8', 'multicast'),
];
const GLOBAL_UNICAST = v6('2000::/3', 'reserved');

/** `a.b.c.d` with four decimal parts of at most 255, as a 32-bit number. */
function parseDottedQuad(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  let value = 0;
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined;
    value = value * 256 + Number(part);
  }
  return value;
}

/**
 * True when a host name must be read as an IPv4 address: its last label is a number (decimal or
 * 0x-hex), as in the WHATWG URL standard. Such a host either parses as IPv4 or is refused —
 * `1.2.3.256` must not go to DNS and come back as something else.
 */
export function looksLikeIPv4(host: string): boolean {
  const labels = host.split('.');
  const last = labels[labels.length - 1] ?? '';
  return /^(\d+|0x[0-9a-f]*)$/i.test(last);
}

/**
 * Parses an IPv4 address in any form `inet_aton(3)` and WHATWG URLs accept — 1 to 4 parts, each
 * decimal, octal (leading 0) or hex (0x) — because that is how curl, ssh and getaddrinfo read
 * a host: `2130706433`, `0177.0.0.1`, `0x7f.1` and `127.1` are all 127.0.0.1.
 * @returns the address as a 32-bit number, or undefined when it is not one.
 */
export function parseIPv4Loose(host: string): number | undefined {
  const parts = host.split('.');
  if (parts.length === 0 || parts.length > 4) return undefined;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part, 16);
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part, 8);
    else if (/^(0|[1-9]\d*)$/.test(part)) value = Number(part);
    else return undefined;
    if (!Number.isSafeInteger(value)) return undefined;
    values.push(value);
  }
  const last = values.pop()!;
  if (values.some((v) => v > 255)) return undefined;
  if (last >= 256 ** (4 - values.length)) return undefined;
  return values.reduce((acc, v, i) => acc + v * 256 ** (3 - i), 0) + last;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/**
 * Parses an IPv6 address (a `%zone` suffix is dropped; an embedded dotted IPv4 tail is allowed)
 * into a 128-bit number, or undefined when it is not one.
 */
export function parseIPv6(text: string): bigint | undefined {
  const address = text.includes('%') ? text.slice(0, text.indexOf('%')) : text;
  if (!isIPv6(address)) return undefined;
  let groups: string[];
  const tailV4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  let head = address;
  const extra: string[] = [];
  if (tailV4) {
    const value = parseDottedQuad(tailV4[1]!);
    if (value === undefined) return undefined;
    extra.push((value >>> 16).toString(16), (value & 0xffff).toString(16));
    head = address.slice(0, -tailV4[1]!.length);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  if (head.includes('::')) {
    const [left, right] = head.split('::') as [string, string];
    const l = left === '' ? [] : left.split(':');
    const r = right === '' ? [] : right.split(':');
    const missing = 8 - l.length - r.length - extra.length;
    if (missing < 0) return undefined;
    groups = [...l, ...Array<string>(missing).fill('0'), ...r, ...extra];
  } else {
    groups = [...(head === '' ? [] : head.split(':')), ...extra];
  }
  if (groups.length !== 8) return undefined;
  let value = 0n;
  for (const group of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(group)) return undefined;
    value = (value << 16n) | BigInt(Number.parseInt(group, 16));
  }
  return value;
}

/** The canonical (RFC 5952) text of a 128-bit IPv6 address. */
export function formatIPv6(value: bigint): string {
  const groups: number[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(Number((value >> shift) & 0xffffn));
  // The longest run of two or more zero groups becomes "::".
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) [bestAt, bestLen] = [i, j - i];
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestAt < 0) return hex.join(':');
  return `${hex.slice(0, bestAt).join(':')}::${hex.slice(bestAt + bestLen).join(':')}`;
}

function inV4(value: number, range: V4Range): boolean {
  const size = 2 ** (32 - range.bits);
  return Math.floor(value / size) === Math.floor(range.base / size);
}

function inV6(value: bigint, range: V6Range): boolean {
  const shift = BigInt(128 - range.bits);
  return value >> shift === range.base >> shift;
}

function classifyV4(value: number): SpecialRange | undefined {
  for (const range of V4_SPECIAL) {
    if (inV4(value, range)) {
      return { kind: range.kind, cidr: `${formatIPv4(range.base)}/${range.bits}` };
    }
  }
  return undefined;
}

function classifyV6(value: bigint): SpecialRange | undefined {
  for (const range of V6_SPECIAL) {
    if (!inV6(value, range)) continue;
    const cidr = `${formatIPv6(range.base)}/${range.bits}`;
    if (range.kind !== 'embeds_v4') return { kind: range.kind, cidr };
    const embedded = Number((value >> BigInt(128 - range.v4At! - 32)) & 0xffffffffn);
    const inner = classifyV4(embedded);
    return inner ? { kind: inner.kind, cidr: `${cidr} carrying ${inner.cidr}` } : undefined;
  }
  if (!inV6(value, GLOBAL_UNICAST)) return { kind: 'reserved', cidr: 'outside 2000::/3' };
  return undefined;
}

/**
 * Classifies an IP address (IPv4 dotted quad or IPv6, as a resolver returns them).
 * @returns the special range it falls in, or undefined for a public unicast address.
 * @throws TypeError when `address` is not an IP address.
 */
export function specialRangeOf(address: string): SpecialRange | undefined {
  if (isIPv4(address)) return classifyV4(parseDottedQuad(address)!);
  const value = parseIPv6(address);
  if (value === undefined) throw new TypeError(`not an IP address: ${address}`);
  return classifyV6(value);
}

/**
 * {@link specialRangeOf} for an address a resolver answered with: an answer that is not an IP
 * address at all is treated as reserved, never as public.
 */
export function specialRangeOfAnswer(address: string): SpecialRange | undefined {
  try {
    return specialRangeOf(address);
  } catch {
    return { kind: 'reserved', cidr: 'not an IP address' };
  }
}
