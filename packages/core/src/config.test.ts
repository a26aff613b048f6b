import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, redactConfig } from './config.js';

describe('loadConfig', () => {
  it('applies the documented defaults to an empty environment', () => {
    const config = loadConfig({});
    expect(config.api).toMatchObject({ host: '127.0.0.1', port: 8080, keys: [] });
    expect(config.redis.url).toBe('redis://127.0.0.1:6379');
    expect(config.model.name).toBe('gpt-5-codex');
    expect(config.model.wire).toBe('responses');
    expect(config.sandbox.image).toBe('patchbay/sandbox:latest');
    expect(config.sandbox.memoryBytes).toBe(2 * 1024 ** 3);
    expect(config.sandbox.reaperIntervalMs).toBe(60_000);
  });

  it('coerces numbers and sizes from strings', () => {
    const config = loadConfig({
      PORT: '9090',
      PATCHBAY_SANDBOX_MEMORY: '512m',
      PATCHBAY_SANDBOX_CPUS: '1.5',
    });
    expect(config.api.port).toBe(9090);
    expect(config.sandbox.memoryBytes).toBe(512 * 1024 ** 2);
    expect(config.sandbox.cpus).toBe(1.5);
  });

  it('reads the offered runtimes, the first the default, and refuses an unknown one', () => {
    expect(loadConfig({}).tasks.runtimes).toEqual(['patchbay', 'codex']);
    expect(loadConfig({ PATCHBAY_RUNTIMES: 'codex, patchbay,codex' }).tasks.runtimes).toEqual([
      'codex',
      'patchbay',
    ]);
    expect(() => loadConfig({ PATCHBAY_RUNTIMES: 'codex,aider' })).toThrow(/PATCHBAY_RUNTIMES/);
    expect(() => loadConfig({ PATCHBAY_RUNTIMES: ' , ' })).toThrow(/PATCHBAY_RUNTIMES/);
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ PORT: '' }).api.port).toBe(8080);
  });

  it('rejects a bad value with one line naming the variable', () => {
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(ConfigError);
    expect(() => loadConfig({ PORT: 'eighty' })).toThrow(
      /^invalid configuration: PORT: .*\(got "eighty"\)$/,
    );
    expect(() => loadConfig({ PATCHBAY_SANDBOX_MEMORY: 'lots' })).toThrow(
      /PATCHBAY_SANDBOX_MEMORY/,
    );
    expect(() => loadConfig({ PATCHBAY_MODEL_WIRE: 'grpc' })).toThrow(/PATCHBAY_MODEL_WIRE/);
  });

  it('never echoes a secret, even when it is the bad value', () => {
    let message = '';
    try {
      loadConfig({ REDIS_URL: 'not a url :hunter2' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/REDIS_URL/);
    expect(message).not.toMatch(/hunter2/);
  });

  it('redacts the model key and the Redis password for logging', () => {
    const config = loadConfig({
      OPENAI_API_KEY: 'sk-secret',
      REDIS_URL: 'redis://:hunter2@localhost:6379',
    });
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toContain('sk-secret');
    expect(printed).not.toContain('hunter2');
    expect(config.model.apiKey).toBe('sk-secret');
  });
});

describe('API keys', () => {
  it('keeps only the SHA-256 of each key, and accepts keys given hashed', () => {
    const hashed = 'a'.repeat(64);
    const config = loadConfig({
      PATCHBAY_API_KEYS: `acme:key-acme-0123456789, umbrella:sha256:${hashed}`,
    });
    expect(config.api.keys).toEqual([
      { tenant: 'acme', sha256: expect.stringMatching(/^[0-9a-f]{64}$/) },
      { tenant: 'umbrella', sha256: hashed },
    ]);
    expect(JSON.stringify(config)).not.toContain('key-acme-0123456789');
  });

  it('refuses a malformed entry without echoing it', () => {
    expect(() => loadConfig({ PATCHBAY_API_KEYS: 'no-colon-secret-value' })).toThrow(
      /^invalid configuration: PATCHBAY_API_KEYS: entry 1 is not tenant:key$/,
    );
    expect(() => loadConfig({ PATCHBAY_API_KEYS: 'acme:short' })).toThrow(/shorter than 16/);
  });

  it('reads the patch and repository size caps', () => {
    const config = loadConfig({ PATCHBAY_MAX_PATCH_BYTES: '1m', PATCHBAY_MAX_REPO_BYTES: '10m' });
    expect(config.tasks.maxPatchBytes).toBe(1024 ** 2);
    expect(config.repos.maxMirrorBytes).toBe(10 * 1024 ** 2);
    expect(loadConfig({}).tasks.maxPatchBytes).toBe(64 * 1024 ** 2);
    expect(() => loadConfig({ PATCHBAY_MAX_PATCH_BYTES: 'lots' })).toThrow(
      /PATCHBAY_MAX_PATCH_BYTES/,
    );
  });

  it('reads how long a fetched ref is reused', () => {
    expect(loadConfig({ PATCHBAY_REF_REFRESH_SECONDS: '5' }).repos.refreshAfterMs).toBe(5000);
    expect(loadConfig({}).repos.refreshAfterMs).toBe(0);
    expect(() => loadConfig({ PATCHBAY_REF_REFRESH_SECONDS: '-1' })).toThrow(
      /PATCHBAY_REF_REFRESH_SECONDS/,
    );
  });

  it('reads the repository host list and flags', () => {
    const config = loadConfig({
      PATCHBAY_REPO_HOSTS: 'github.com, http://127.0.0.1:9418',
      PATCHBAY_ALLOW_SSH: 'yes',
    });
    expect(config.repos).toEqual({
      hosts: ['github.com', 'http://127.0.0.1:9418'],
      allowSsh: true,
      maxMirrorBytes: 2 * 1024 ** 3,
      refreshAfterMs: 0,
    });
    expect(loadConfig({}).repos.hosts).toEqual(['github.com', 'gitlab.com', 'bitbucket.org']);
    expect(() => loadConfig({ PATCHBAY_ALLOW_SSH: 'maybe' })).toThrow(
      /PATCHBAY_ALLOW_SSH: expected true or false/,
    );
    // Every entry is parsed as the URL policy reads it.
    for (const bad of ['http://*.example.com', 'exa mple.com', 'host:99999', '-oProxy=x']) {
      expect(() => loadConfig({ PATCHBAY_REPO_HOSTS: `github.com,${bad}` })).toThrow(
        new RegExp(
          `^invalid configuration: PATCHBAY_REPO_HOSTS: repository host entry "${bad.replace(/[.*+?]/g, '\\$&')}"`,
        ),
      );
    }
  });

  it('reads GitHub Apps (their key files) and forge integrations, and never echoes a secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchbay-config-'));
    const key = join(dir, 'app.pem');
    const pem = '-----BEGIN PRIVATE KEY-----\nMIIsecretkeybody\n-----END PRIVATE KEY-----\n';
    await writeFile(key, pem);
    await writeFile(join(dir, 'not.pem'), 'hello');
    const config = loadConfig({
      PATCHBAY_GITHUB_APPS: `GitHub.com=12345:${key}`,
      PATCHBAY_INTEGRATIONS: JSON.stringify([
        { tenant: 'acme', forge: 'github', secret: 'whsec-abcdef0123456789', repos: ['acme/*'] },
      ]),
    });
    expect(config.delivery.githubApps).toEqual({ 'github.com': { appId: 12345, privateKey: pem } });
    expect(config.integrations).toEqual([
      {
        tenant: 'acme',
        forge: 'github',
        secret: 'whsec-abcdef0123456789',
        repos: ['acme/*'],
        mention: '@patchbay',
        associations: ['OWNER', 'MEMBER', 'COLLABORATOR'],
        users: [],
        task: {},
      },
    ]);
    const printed = JSON.stringify(redactConfig(config));
    expect(printed).not.toContain('MIIsecretkeybody');
    expect(printed).not.toContain('whsec-abcdef0123456789');
    for (const [value, said] of [
      ['github.com=abc:/x.pem', /is not host=appId/],
      [`github.com=1:${join(dir, 'missing.pem')}`, /cannot read the private key/],
      [`github.com=1:${join(dir, 'not.pem')}`, /holds no PEM private key/],
    ] as const)
      expect(() => loadConfig({ PATCHBAY_GITHUB_APPS: value })).toThrow(said);
    for (const value of [
      'not json',
      '[{"tenant":"a","forge":"bitbucket","secret":"whsec-abcdef0123456789","repos":["a/b"]}]',
      '[{"tenant":"a","forge":"github","secret":"short-secret","repos":["a/b"]}]',
      '[{"tenant":"a","forge":"github","secret":"whsec-abcdef0123456789","repos":[]}]',
    ]) {
      const err = (() => {
        try {
          loadConfig({ PATCHBAY_INTEGRATIONS: value });
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })();
      expect(err).toContain('PATCHBAY_INTEGRATIONS');
      expect(err).not.toContain('short-secret');
      expect(err).not.toContain('whsec-abcdef0123456789');
    }
  });

  it('reads delivery credentials (variable and file), forges, author and webhooks, and never echoes a secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'patchbay-config-'));
    const file = join(dir, 'credentials');
    await writeFile(file, '# push tokens\ngit.corp=file-token-1\ngithub.com=from-file\n');
    const config = loadConfig({
      PATCHBAY_GIT_CREDENTIALS: 'github.com=ghp_secret1, gitlab.corp:8443=bot:glpat-2',
      PATCHBAY_GIT_CREDENTIALS_FILE: file,
      PATCHBAY_FORGES: 'git.corp=gitea,gitlab.corp:8443=gitlab:https://gitlab.corp:8443/api/v4/',
      PATCHBAY_GIT_AUTHOR: 'Deploy Bot <bot@corp.example>',
      PATCHBAY_WEBHOOKS: JSON.stringify([
        { tenant: 'acme', url: 'https://hooks.acme.example/p', secret: 'whsec_0123456789abcdef' },
      ]),
      PATCHBAY_WEBHOOK_ALLOW_HOSTS: 'hooks.internal',
    });
    expect(config.delivery.credentials).toEqual({
      'git.corp': { username: null, token: 'file-token-1' },
      'github.com': { username: null, token: 'ghp_secret1' },
      'gitlab.corp:8443': { username: 'bot', token: 'glpat-2' },
    });
    expect(config.delivery.forges['git.corp']).toEqual({
      kind: 'gitea',
      apiUrl: 'https://git.corp/api/v1',
    });
    expect(config.delivery.forges['gitlab.corp:8443']).toEqual({
      kind: 'gitlab',
      apiUrl: 'https://gitlab.corp:8443/api/v4',
    });
    expect(config.delivery.forges['github.com']?.kind).toBe('github');
    expect(config.delivery.author).toEqual({ name: 'Deploy Bot', email: 'bot@corp.example' });
    expect(config.webhooks.configured).toHaveLength(1);
    expect(config.webhooks).toMatchObject({
      allowHosts: ['hooks.internal'],
      retryMs: 24 * 3_600_000,
    });
    expect(config.publicUrl).toBe('http://127.0.0.1:8080');
    const printed = JSON.stringify(redactConfig(config));
    for (const secret of ['ghp_secret1', 'glpat-2', 'file-token-1', 'whsec_0123456789abcdef'])
      expect(printed).not.toContain(secret);
    for (const [name, value] of [
      ['PATCHBAY_GIT_CREDENTIALS', 'github.com'],
      ['PATCHBAY_GIT_CREDENTIALS', 'bad host=tok-secret'],
      ['PATCHBAY_WEBHOOKS', '[{"tenant":"a","url":"u","secret":"short-secret"}]'],
    ] as const) {
      const err = (() => {
        try {
          loadConfig({ [name]: value });
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })();
      expect(err).toContain(name);
      expect(err).not.toContain('tok-secret');
      expect(err).not.toContain('short-secret');
    }
    expect(() => loadConfig({ PATCHBAY_FORGES: 'git.corp=svn' })).toThrow(/PATCHBAY_FORGES/);
    expect(() => loadConfig({ PATCHBAY_GIT_CREDENTIALS_FILE: join(dir, 'missing') })).toThrow(
      /PATCHBAY_GIT_CREDENTIALS_FILE: cannot read/,
    );
  });
});
