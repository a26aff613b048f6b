import { isPatchbayError } from '@patchbay/core';
import { describe, expect, it } from 'vitest';
import { formatIPv6, parseIPv4Loose, parseIPv6, specialRangeOf } from '@patchbay/core';
import {
  checkRepoUrl,
  checkRepoUrlSyntax,
  compileRepoUrlPolicy,
  type HostResolver,
  type RepoUrlPolicyOptions,
  type RepoUrlRefusal,
} from './url-policy.js';

/**
 * DNS as these tests see it. Nothing here ever reaches a real resolver: an unknown name fails
 * the way getaddrinfo does.
 */
const DNS: Record<string, string[]> = {
  'github.com': ['140.82.112.3'],
  'gitlab.com': ['172.65.251.78'],
  'example.org': ['93.184.216.34'],
  'git.example.com': ['93.184.216.35'],
  'v6only.example.org': ['2606:4700::6810:84e5'],
  'nat64.example.org': ['64:ff9b::8c52:7003'],
  localhost: ['127.0.0.1', '::1'],
  'internal.example.org': ['10.1.2.3'],
  'rebind.example.org': ['93.184.216.34', '127.0.0.1'],
  'metadata.example.org': ['169.254.169.254'],
  'alibaba-meta.example.org': ['100.100.100.200'],
  'loop6.example.org': ['::1'],
  'mapped.example.org': ['::ffff:10.0.0.1'],
  'ula.example.org': ['fd00:ec2::254'],
  'nat64-meta.example.org': ['64:ff9b::a9fe:a9fe'],
  'zero.example.org': ['0.0.0.0'],
  'private.example.com': ['192.168.0.10'],
  'shared.example.org': ['100.64.0.1'],
};

function fakeResolver(): HostResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolver = async (host: string) => {
    calls.push(host);
    const addresses = DNS[host];
    if (!addresses) {
      throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    }
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolver, { calls });
}

const ANY: RepoUrlPolicyOptions = { hosts: ['*'] };
const SSH: RepoUrlPolicyOptions = { allowSsh: true };
const TEST_SERVER: RepoUrlPolicyOptions = { hosts: ['http://127.0.0.1:8080'] };

interface Accepted {
  url: string;
  policy?: RepoUrlPolicyOptions;
  normalised: string;
  addresses?: string[];
}

const accepted: Accepted[] = [
  {
    url: 'https://github.com/org/repo.git',
    normalised: 'https://github.com/org/repo.git',
    addresses: ['140.82.112.3'],
  },
  { url: 'HTTPS://GitHub.COM./org/Repo', normalised: 'https://github.com/org/Repo' },
  { url: 'https://github.com:443/org/repo/', normalised: 'https://github.com/org/repo' },
  {
    url: 'https://gitlab.com/group/sub/repo.git',
    normalised: 'https://gitlab.com/group/sub/repo.git',
  },
  {
    url: 'https://github.com/org/repo_with.dots-and~tilde',
    normalised: 'https://github.com/org/repo_with.dots-and~tilde',
  },
  {
    url: 'http://127.0.0.1:8080/app.git',
    policy: TEST_SERVER,
    normalised: 'http://127.0.0.1:8080/app.git',
    addresses: ['127.0.0.1'],
  },
  // Every spelling of the listed address is that address.
  {
    url: 'http://2130706433:8080/app.git',
    policy: TEST_SERVER,
    normalised: 'http://127.0.0.1:8080/app.git',
  },
  {
    url: 'http://localhost:9000/app.git',
    policy: { hosts: ['http://localhost:9000'] },
    normalised: 'http://localhost:9000/app.git',
    addresses: ['127.0.0.1', '::1'],
  },
  {
    url: 'http://[::1]:8080/app.git',
    policy: { hosts: ['http://[::1]:8080'] },
    normalised: 'http://[::1]:8080/app.git',
  },
  {
    url: 'https://git.example.com:8443/team/app.git',
    policy: { hosts: ['https://git.example.com:8443'] },
    normalised: 'https://git.example.com:8443/team/app.git',
  },
  {
    url: 'ssh://git@github.com/org/repo.git',
    policy: SSH,
    normalised: 'ssh://git@github.com/org/repo.git',
  },
  {
    url: 'git+ssh://git@github.com/org/repo.git',
    policy: SSH,
    normalised: 'ssh://git@github.com/org/repo.git',
  },
  { url: 'git@github.com:org/repo.git', policy: SSH, normalised: 'git@github.com:org/repo.git' },
  {
    url: 'ssh://git@git.example.com:2222/app.git',
    policy: { hosts: ['ssh://git.example.com:2222'], allowSsh: true },
    normalised: 'ssh://git@git.example.com:2222/app.git',
  },
  {
    url: 'https://example.org/any/repo.git',
    policy: ANY,
    normalised: 'https://example.org/any/repo.git',
    addresses: ['93.184.216.34'],
  },
  {
    url: 'https://git.example.com/app.git',
    policy: { hosts: ['*.example.com'] },
    normalised: 'https://git.example.com/app.git',
  },
  {
    url: 'https://v6only.example.org/app.git',
    policy: ANY,
    normalised: 'https://v6only.example.org/app.git',
  },
  // DNS64 answers for an IPv4-only host on an IPv6-only worker: judged by the IPv4 inside.
  {
    url: 'https://nat64.example.org/app.git',
    policy: ANY,
    normalised: 'https://nat64.example.org/app.git',
  },
  {
    url: 'https://[2606:4700:0:0::1111]/app.git',
    policy: ANY,
    normalised: 'https://[2606:4700::1111]/app.git',
  },
  { url: 'https://8.8.8.8/app.git', policy: ANY, normalised: 'https://8.8.8.8/app.git' },
  // A host the operator named is trusted to resolve where the operator's DNS says.
  {
    url: 'https://internal.example.org/app.git',
    policy: { hosts: ['internal.example.org'] },
    normalised: 'https://internal.example.org/app.git',
    addresses: ['10.1.2.3'],
  },
];

interface Refused {
  url: string;
  policy?: RepoUrlPolicyOptions;
  reason: RepoUrlRefusal;
  /** The refusal needs DNS (so the resolver is consulted). */
  resolves?: boolean;
}

const refused: Refused[] = [
  // Local files and paths
  { url: 'file:///etc/passwd', reason: 'local_path' },
  { url: 'FILE:///srv/repo.git', reason: 'local_path' },
  { url: '/srv/git/repo.git', reason: 'local_path' },
  { url: './repo', reason: 'local_path' },
  { url: '../repo', reason: 'local_path' },
  { url: '~/repo.git', reason: 'local_path' },
  { url: 'repo', reason: 'local_path' },
  { url: 'C:\\repo', reason: 'invalid_url' },
  // git remote helpers
  { url: 'ext::sh%20-c%20touch%20/tmp/pwned', reason: 'transport_helper' },
  { url: 'fd::17', reason: 'transport_helper' },
  { url: 'fd::0,1/repo', reason: 'transport_helper' },
  { url: 'foo::https://github.com/org/repo', reason: 'transport_helper' },
  { url: 'persistent-https::github.com/org/repo', reason: 'transport_helper' },
  // Option injection
  { url: '-uhttps://github.com/org/repo', reason: 'option_injection' },
  { url: '--upload-pack=touch${IFS}/tmp/pwned', reason: 'option_injection' },
  { url: 'ssh://-oProxyCommand=touch%20x/repo', policy: SSH, reason: 'option_injection' },
  { url: 'ssh://git@-oProxyCommand=x/repo', policy: SSH, reason: 'option_injection' },
  { url: 'ssh://-oProxyCommand@github.com/repo', policy: SSH, reason: 'option_injection' },
  { url: 'git@-oProxyCommand=x:repo', policy: SSH, reason: 'option_injection' },
  { url: 'github.com:-oProxyCommand=x', policy: SSH, reason: 'option_injection' },
  { url: 'https://github.com/-x/repo', reason: 'option_injection' },
  { url: 'https://github.com/org/--upload-pack=x', reason: 'option_injection' },
  { url: 'https://-github.com/org/repo', policy: ANY, reason: 'option_injection' },
  // Credentials
  { url: 'https://user:pass@github.com/org/repo', reason: 'credentials' },
  { url: 'https://ghp_token@github.com/org/repo', reason: 'credentials' },
  { url: 'https://github.com@evil.example/org/repo', reason: 'credentials' },
  { url: 'https://:@github.com/org/repo', reason: 'credentials' },
  { url: 'ssh://git:hunter2@github.com/org/repo', policy: SSH, reason: 'credentials' },
  { url: 'ssh://git:@github.com/org/repo', policy: SSH, reason: 'credentials' },
  // Queries, fragments, parser differentials
  { url: 'https://github.com/org/repo?x=1', reason: 'query_or_fragment' },
  { url: 'https://github.com/org/repo#main', reason: 'query_or_fragment' },
  { url: 'https://evil.example#@github.com/org/repo', reason: 'query_or_fragment' },
  { url: 'https://github.com?@evil.example/repo', reason: 'query_or_fragment' },
  { url: 'https://github.com\\@evil.example/org/repo', reason: 'invalid_url' },
  { url: 'https://github.com/org/%2e%2e/repo', reason: 'invalid_path' },
  // Whitespace, controls, invisible characters
  { url: 'https://github.com/org/re po', reason: 'control_character' },
  { url: 'https://github.com/org/repo\n', reason: 'control_character' },
  { url: '\thttps://github.com/org/repo', reason: 'control_character' },
  { url: 'https://github.com\u0000.evil.example/repo', reason: 'control_character' },
  { url: 'https://github.com/org/\u202egnp.repo', reason: 'control_character' },
  { url: 'https://github.com/org/\u200brepo', reason: 'control_character' },
  { url: 'https://g\u0130thub.com/org/repo', reason: 'non_ascii' },
  { url: 'https://xn--github.com/org/repo', reason: 'host_not_allowed' },
  // Schemes
  { url: 'git://github.com/org/repo', reason: 'scheme_not_allowed' },
  { url: 'ftp://github.com/org/repo', reason: 'scheme_not_allowed' },
  { url: 'javascript://github.com/%0aalert(1)', reason: 'scheme_not_allowed' },
  { url: 'http://github.com/org/repo', reason: 'scheme_not_allowed' },
  { url: 'http://example.org/repo', policy: ANY, reason: 'scheme_not_allowed' },
  { url: 'ssh://git@github.com/org/repo', reason: 'ssh_disabled' },
  { url: 'git@github.com:org/repo.git', reason: 'ssh_disabled' },
  // Hosts and ports
  { url: 'https://evil.example/org/repo', reason: 'host_not_allowed' },
  { url: 'https://github.com.evil.example/org/repo', reason: 'host_not_allowed' },
  { url: 'https://evilgithub.com/org/repo', reason: 'host_not_allowed' },
  {
    url: 'https://example.com/app.git',
    policy: { hosts: ['*.example.com'] },
    reason: 'host_not_allowed',
  },
  { url: 'https://github.com:8443/org/repo', reason: 'port_not_allowed' },
  { url: 'https://github.com:22/org/repo', reason: 'port_not_allowed' },
  { url: 'ssh://git@github.com:2222/org/repo', policy: SSH, reason: 'port_not_allowed' },
  { url: 'http://127.0.0.1:8081/app.git', policy: TEST_SERVER, reason: 'port_not_allowed' },
  { url: 'https://127.0.0.1:8080/app.git', policy: TEST_SERVER, reason: 'scheme_not_allowed' },
  { url: 'http://127.0.0.2:8080/app.git', policy: TEST_SERVER, reason: 'host_not_allowed' },
  { url: 'https://github.com:0/org/repo', reason: 'invalid_port' },
  { url: 'https://github.com:99999/org/repo', reason: 'invalid_port' },
  { url: 'https://github.com:/org/repo', reason: 'invalid_port' },
  { url: 'https://github.com:80:443/org/repo', reason: 'invalid_port' },
  { url: 'https://github.com:0x1bb/org/repo', reason: 'invalid_port' },
  // IP literals in special ranges, in every spelling
  { url: 'https://127.0.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://2130706433/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://0177.0.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://0x7f.0.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://0x7f000001/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://017700000001/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://127.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://127.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://127.0.0.1./repo', policy: ANY, reason: 'private_address' },
  { url: 'https://0/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://0.0.0.0/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://10.0.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://172.16.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://172.31.255.255/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://192.168.1.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://169.254.169.254/latest/meta-data', policy: ANY, reason: 'private_address' },
  { url: 'https://0xa9fea9fe/latest/meta-data', policy: ANY, reason: 'private_address' },
  { url: 'https://100.100.100.200/latest/meta-data', policy: ANY, reason: 'private_address' },
  { url: 'https://100.64.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://224.0.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://255.255.255.255/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://198.18.0.1/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://192.0.0.192/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[0:0:0:0:0:0:0:1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::ffff:127.0.0.1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::ffff:7f00:1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[0:0:0:0:0:ffff:169.254.169.254]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::127.0.0.1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[fe80::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[fe80::1%25eth0]/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://[fd00::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[fd00:ec2::254]/latest/meta-data', policy: ANY, reason: 'private_address' },
  { url: 'https://[fc00::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[fec0::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[ff02::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[64:ff9b::a9fe:a9fe]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[64:ff9b::127.0.0.1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[64:ff9b:1::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[2002:7f00:1::]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[2002:a9fe:a9fe::1]/repo', policy: ANY, reason: 'private_address' },
  {
    url: 'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/repo',
    policy: ANY,
    reason: 'private_address',
  },
  { url: 'https://[2001:db8::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[100::1]/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://localhost/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://LOCALHOST./repo', policy: ANY, reason: 'private_address' },
  { url: 'https://app.localhost/repo', policy: ANY, reason: 'private_address' },
  // Malformed hosts
  { url: 'https://1.2.3.256/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://1.2.3.4.5/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://0x/repo', policy: ANY, reason: 'private_address' },
  { url: 'https://[::1/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://[127.0.0.1]/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://a..b/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://bad-.example.org/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https://bad%2e.example.org/repo', policy: ANY, reason: 'invalid_host' },
  { url: 'https:///repo', policy: ANY, reason: 'invalid_host' },
  { url: 'git@[::1]:repo', policy: { hosts: ['*'], allowSsh: true }, reason: 'invalid_host' },
  // Paths
  { url: 'https://github.com', reason: 'invalid_path' },
  { url: 'https://github.com/', reason: 'invalid_path' },
  { url: 'https://github.com/org/../other/repo', reason: 'invalid_path' },
  { url: 'https://github.com/org/./repo', reason: 'invalid_path' },
  { url: 'https://github.com//org/repo', reason: 'invalid_path' },
  { url: 'https://github.com/org/repo;rm', reason: 'invalid_path' },
  { url: 'https://github.com/org/$(id)', reason: 'invalid_path' },
  { url: `https://github.com/${'a'.repeat(3000)}`, reason: 'too_long' },
  { url: '', reason: 'invalid_url' },
  // Names that resolve to special addresses (only reachable through wildcards)
  {
    url: 'https://internal.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://rebind.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://metadata.example.org/latest',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://alibaba-meta.example.org/latest',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://loop6.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://mapped.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://ula.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://nat64-meta.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://zero.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://shared.example.org/repo',
    policy: ANY,
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://private.example.com/app.git',
    policy: { hosts: ['*.example.com'] },
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://internal.example.org/repo',
    policy: { hosts: ['internal.example.org'], trustListedHosts: false },
    reason: 'resolves_to_private_address',
    resolves: true,
  },
  {
    url: 'https://internal.example.org/repo',
    policy: { hosts: ['internal.example.org', '*'], trustListedHosts: false },
    reason: 'resolves_to_private_address',
    resolves: true,
  },
];

describe('checkRepoUrl', () => {
  it('has a corpus of at least 150 cases', () => {
    expect(accepted.length + refused.length).toBeGreaterThanOrEqual(150);
  });

  it.each(accepted)('accepts $url', async ({ url, policy, normalised, addresses }) => {
    const resolver = fakeResolver();
    const result = await checkRepoUrl(url, policy, resolver);
    if (!result.ok) throw result.error;
    expect(result.url).toBe(normalised);
    if (addresses) expect(result.addresses).toEqual(addresses);
    expect(result.addresses.length).toBeGreaterThan(0);
  });

  it.each(refused)('refuses $url ($reason)', async ({ url, policy, reason, resolves }) => {
    const resolver = fakeResolver();
    const result = await checkRepoUrl(url, policy, resolver);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(isPatchbayError(result.error, 'repo_url_refused')).toBe(true);
    expect(result.error.details?.reason).toBe(reason);
    // Everything but a resolution check is decided before any DNS query goes out.
    expect(resolver.calls.length > 0).toBe(resolves === true);
  });

  it('never puts the refused URL, which may carry a secret, into the error', async () => {
    const result = await checkRepoUrl('https://x:s3cret@github.com/org/repo', {}, fakeResolver());
    expect(result.ok).toBe(false);
    if (!result.ok)
      expect(JSON.stringify([result.error.message, result.error.details])).not.toContain('s3cret');
  });

  it('answers repo_unreachable, not a refusal, when the name does not resolve', async () => {
    const result = await checkRepoUrl('https://nx.example.org/repo', ANY, fakeResolver());
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error.code).toBe('repo_unreachable');
      expect(result.error.details).toMatchObject({ reason: 'dns', dnsError: 'ENOTFOUND' });
    }
  });

  it('treats an empty DNS answer as unresolvable', async () => {
    const result = await checkRepoUrl('https://example.org/repo', ANY, async () => []);
    expect(result.ok ? 'ok' : result.error.code).toBe('repo_unreachable');
  });

  it('prefers an exact entry over a wildcard for the same host', async () => {
    const policy = { hosts: ['*', 'http://localhost:9000'] };
    const result = await checkRepoUrl('http://localhost:9000/app.git', policy, fakeResolver());
    expect(result.ok).toBe(true);
    const viaWildcard = await checkRepoUrl('https://localhost/app.git', policy, fakeResolver());
    expect(viaWildcard.ok ? 'ok' : viaWildcard.error.details?.reason).toBe('private_address');
  });

  it('accepts a compiled policy', async () => {
    const policy = compileRepoUrlPolicy({ hosts: ['github.com'] });
    expect((await checkRepoUrl('https://github.com/a/b', policy, fakeResolver())).ok).toBe(true);
  });
});

describe('checkRepoUrlSyntax', () => {
  it('checks everything but DNS, synchronously', () => {
    const ok = checkRepoUrlSyntax('https://GitHub.com/org/repo/');
    expect(ok).toMatchObject({ ok: true, url: 'https://github.com/org/repo', addresses: [] });
    const literal = checkRepoUrlSyntax('http://127.0.0.1:8080/x', TEST_SERVER);
    expect(literal).toMatchObject({ ok: true, addresses: ['127.0.0.1'] });
    const bad = checkRepoUrlSyntax('file:///etc/passwd');
    expect(bad.ok ? 'ok' : bad.error.details?.reason).toBe('local_path');
  });
});

describe('a policy remembering the URLs it accepted', () => {
  it('answers a URL it accepted from memory, keeps a bounded number, and never keeps a refusal', async () => {
    const policy = compileRepoUrlPolicy({ hosts: ['github.com'] });
    const first = policy.match('https://github.com/org/repo');
    expect(policy.match('https://github.com/org/repo')).toBe(first);
    expect(Object.isFrozen(first.parsed)).toBe(true);
    // DNS is asked every time: only the parse and the match are remembered.
    const dns = fakeResolver();
    for (let i = 0; i < 2; i++) {
      expect(await checkRepoUrl('https://github.com/org/repo', policy, dns)).toMatchObject({
        ok: true,
        url: 'https://github.com/org/repo',
      });
    }
    expect(dns.calls).toEqual(['github.com', 'github.com']);
    for (let i = 0; i < 2; i++) {
      const refused = checkRepoUrlSyntax('https://gitlab.com/org/repo', policy);
      expect(refused.ok ? 'ok' : refused.error.details?.reason).toBe('host_not_allowed');
    }
    // After 1,024 other URLs the first is forgotten, and matched afresh to the same answer.
    for (let i = 0; i < 1024; i++) policy.match(`https://github.com/org/repo-${i}`);
    const again = policy.match('https://github.com/org/repo');
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });
});

describe('compileRepoUrlPolicy', () => {
  it.each([
    'ftp://github.com',
    'http://*.example.com',
    'http://*',
    'github.com/org',
    'github.com:0',
    'github.com:70000',
    'user@github.com',
    '',
    '-github.com',
    'http://[::1',
  ])('refuses the host entry %j', (entry) => {
    expect(() => compileRepoUrlPolicy({ hosts: [entry] })).toThrow(
      expect.objectContaining({ code: 'validation_error' }),
    );
  });

  it('reads entries case-insensitively and with trailing slashes', () => {
    const policy = compileRepoUrlPolicy({ hosts: ['HTTP://LocalHost:9000/', 'GitHub.com.'] });
    expect(policy.rules.map((r) => [r.scheme, r.host, r.port])).toEqual([
      ['http', 'localhost', 9000],
      ['default', 'github.com', undefined],
    ]);
  });
});

describe('IP address parsing', () => {
  it.each([
    ['127.0.0.1', '127.0.0.1'],
    ['2130706433', '127.0.0.1'],
    ['0177.0.0.1', '127.0.0.1'],
    ['0x7f.1', '127.0.0.1'],
    ['127.1', '127.0.0.1'],
    ['10.1', '10.0.0.1'],
    ['0', '0.0.0.0'],
    ['0xc0.0xa8.1', '192.168.0.1'],
  ])('reads %s as %s', (text, dotted) => {
    const value = parseIPv4Loose(text);
    expect(value).toBeDefined();
    expect([24, 16, 8, 0].map((s) => Math.floor(value! / 2 ** s) % 256).join('.')).toBe(dotted);
  });

  it.each(['256.0.0.1', '1.2.3.4.5', '0x1.0x2.0x3.0x100', '08.0.0.1', '4294967296', '1.2.65536'])(
    'does not read %s as IPv4',
    (text) => expect(parseIPv4Loose(text)).toBeUndefined(),
  );

  it.each([
    ['::1', '::1'],
    ['0:0:0:0:0:0:0:1', '::1'],
    ['::ffff:127.0.0.1', '::ffff:7f00:1'],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['fe80::1%eth0', 'fe80::1'],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304'],
  ])('canonicalises IPv6 %s as %s', (text, canonical) => {
    expect(formatIPv6(parseIPv6(text)!)).toBe(canonical);
  });

  it.each([
    ['8.8.8.8', undefined],
    ['140.82.112.3', undefined],
    ['2606:4700::1111', undefined],
    ['64:ff9b::808:808', undefined],
    ['2002:808:808::1', undefined],
    ['127.0.0.53', 'loopback'],
    ['169.254.169.254', 'link_local'],
    ['100.100.100.200', 'cgnat'],
    ['172.20.0.1', 'private'],
    ['239.255.255.250', 'multicast'],
    ['203.0.113.9', 'documentation'],
    ['::', 'unspecified'],
    ['::ffff:192.168.0.1', 'private'],
    ['64:ff9b::7f00:1', 'loopback'],
    ['fe80::abcd', 'link_local'],
    ['fd12:3456::1', 'private'],
    ['ff05::2', 'multicast'],
    ['2001::1', 'reserved'],
    ['::2', 'reserved'],
  ])('classifies %s as %s', (address, kind) => {
    expect(specialRangeOf(address)?.kind).toBe(kind);
  });
});
