import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GitRunner, pinnedResolveConfig, redactSecrets } from './run-git.js';

const execFileAsync = promisify(execFile);

let home: string;
let git: GitRunner;

beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'patchbay-run-git-'));
  git = new GitRunner({
    homeDir: home,
    env: {
      PATH: process.env.PATH,
      https_proxy: 'http://proxy.invalid:3128',
      OPENAI_API_KEY: 'sk-must-not-leak',
      GIT_DIR: '/etc',
      GIT_CONFIG_PARAMETERS: "'core.hookspath'='/tmp/evil'",
      GIT_SSH_COMMAND: 'touch /tmp/pwned',
    },
  });
});

afterAll(async () => {
  await rm(home, { recursive: true, force: true });
});

/** A git alias that runs a shell command: the test's way to look inside git's environment. */
const shell = (script: string) => ({ config: { 'alias.sh': `!${script}` } });

describe('GitRunner', () => {
  it('gives git a scrubbed environment with only proxy and CA variables passed through', async () => {
    const result = await git.run(['sh'], shell('env'));
    const env = Object.fromEntries(
      result.stdout
        .toString()
        .trim()
        .split('\n')
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      HOME: home,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: '/bin/false',
      SSH_ASKPASS: '/bin/false',
      GIT_PROTOCOL_FROM_USER: '0',
      GIT_ALLOW_PROTOCOL: 'https:http',
      https_proxy: 'http://proxy.invalid:3128',
    });
    expect(env.OPENAI_API_KEY).toBeUndefined();
    expect(env.GIT_DIR).toBeUndefined();
    expect(env.GIT_SSH_COMMAND).toBeUndefined();
    // git exports its -c settings to children in GIT_CONFIG_PARAMETERS: ours, not the host's.
    expect(env.GIT_CONFIG_PARAMETERS).toContain("'core.hooksPath'='/dev/null'");
    expect(env.GIT_CONFIG_PARAMETERS).not.toContain('/tmp/evil');
  });

  it('has no configuration but its own: no system, global or user file is read', async () => {
    const result = await git.run(['config', '--list', '--show-origin']);
    const lines = result.stdout.toString().trim().split('\n');
    expect(lines.every((line) => line.startsWith('command line:'))).toBe(true);
    const config = lines.map((line) => line.replace(/^command line:\s*/, ''));
    expect(config).toEqual(
      expect.arrayContaining([
        'core.hookspath=/dev/null',
        'protocol.file.allow=never',
        'protocol.ext.allow=never',
        'protocol.allow=never',
        'submodule.recurse=false',
        'core.fsmonitor=false',
        'http.followredirects=false',
        'credential.helper=',
        'transfer.credentialsinurl=die',
      ]),
    );
  });

  it.each([
    ['file:///etc', /transport 'file' not allowed/],
    ['ext::sh -c id', /transport 'ext' not allowed/],
    ['fd::0', /transport 'fd' not allowed/],
    ['ssh://127.0.0.1/repo', /transport 'ssh' not allowed/],
  ])('refuses the %s transport even if asked directly', async (url, message) => {
    const result = await git.run(['ls-remote', '--', url]);
    expect(result.exitCode).not.toBe(0);
    expect(result.stderr).toMatch(message);
  });

  it('kills the whole process group on timeout', async () => {
    const marker = `${process.pid}${Date.now() % 1000}`;
    const started = Date.now();
    await expect(
      git.run(['sh'], { ...shell(`sleep 3${marker} & sleep 3${marker}; wait`), timeoutMs: 300 }),
    ).rejects.toMatchObject({ code: 'timeout' });
    expect(Date.now() - started).toBeLessThan(5000);
    const { stdout } = await execFileAsync('ps', ['-eo', 'args']);
    expect(stdout).not.toContain(`sleep 3${marker}`);
  });

  it('stops at an abort with cancelled', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(
      git.run(['sh'], { ...shell('sleep 30'), signal: controller.signal }),
    ).rejects.toMatchObject({ code: 'cancelled' });
    await expect(git.run(['version'], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'cancelled',
    });
  });

  it('caps collected output', async () => {
    await expect(
      git.run(['sh'], { ...shell('head -c 100000 /dev/zero'), maxStdoutBytes: 1000 }),
    ).rejects.toMatchObject({ code: 'repo_too_large' });
  });

  it('keeps the tail of stderr and redacts credentials in it', async () => {
    const result = await git.run(
      ['sh'],
      shell(
        'echo "fatal: https://user:hunter2@git.example/x Authorization: Bearer abc" >&2; exit 3',
      ),
    );
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain('https://[redacted]@git.example/x');
    expect(result.stderr).not.toContain('hunter2');
    expect(result.stderr).not.toContain('abc');
  });

  it('feeds stdin from a string', async () => {
    const result = await git.run(['hash-object', '--stdin'], { stdin: 'hello\n' });
    expect(result.stdout.toString().trim()).toBe('ce013625030ba8dba906f756967f9e9ca394464a');
  });
});

describe('redactSecrets', () => {
  it.each([
    ['https://u:p@h/x', 'https://[redacted]@h/x'],
    ['ssh://token@h/x', 'ssh://[redacted]@h/x'],
    ['?access_token=abc&x=1', '?access_token=[redacted]&x=1'],
    ['password=hunter2', 'password=[redacted]'],
  ])('%s', (input, output) => expect(redactSecrets(input)).toBe(output));
});

describe('GitRunner.pinned', () => {
  it('pins http(s) through curl and ssh through HostName, keeping the name for host keys', () => {
    const ssh = new GitRunner({ homeDir: '/nonexistent', allowSsh: true, env: {} });
    expect(
      ssh.pinned({ scheme: 'https', host: 'github.com', port: 443, addresses: ['140.82.112.3'] }),
    ).toEqual({
      config: { 'http.curloptResolve': 'github.com:443:140.82.112.3' },
    });
    expect(
      ssh.pinned({ scheme: 'ssh', host: 'github.com', port: 22, addresses: ['140.82.112.3'] }),
    ).toEqual({
      env: {
        GIT_SSH_COMMAND: 'ssh -o BatchMode=yes -o HostName=140.82.112.3 -o HostKeyAlias=github.com',
      },
    });
  });
});

describe('pinnedResolveConfig', () => {
  it('pins names to the checked addresses and leaves IP hosts alone', () => {
    expect(pinnedResolveConfig('github.com', 443, ['140.82.112.3', '2606:50c0::1'])).toEqual({
      'http.curloptResolve': 'github.com:443:140.82.112.3,[2606:50c0::1]',
    });
    expect(pinnedResolveConfig('127.0.0.1', 80, ['127.0.0.1'])).toEqual({});
  });
});
