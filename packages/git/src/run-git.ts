import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { isIP } from 'node:net';
import { PassThrough, Readable, type Writable } from 'node:stream';
import { PatchbayError } from '@patchbay/core';

/**
 * Host environment variables git may see: how to reach the network (proxies, CA bundles) and
 * where programs are. Nothing else from the worker's environment reaches git — no GIT_DIR,
 * GIT_CONFIG_*, GIT_TRACE*, credentials or API keys.
 */
const PASSED_ENV = [
  'PATH',
  'http_proxy',
  'https_proxy',
  'all_proxy',
  'no_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'GIT_SSL_CAINFO',
  'GIT_SSL_CAPATH',
  'GIT_PROXY_SSL_CAINFO',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
] as const;

/**
 * Configuration forced on every git command, ahead of anything in the repository. With system and
 * global config off, these (and the mirror's own config, which only Patchbay writes) are all the
 * configuration git has.
 */
const FORCED_CONFIG: readonly (readonly [string, string])[] = [
  // Hooks would run code from a tampered mirror; fsmonitor runs a configured program.
  ['core.hooksPath', '/dev/null'],
  ['core.fsmonitor', 'false'],
  // Never ask anyone anything, never use a stored credential, never accept one in a URL.
  ['core.askPass', '/bin/false'],
  ['credential.helper', ''],
  ['transfer.credentialsInUrl', 'die'],
  // Transports: only what GIT_ALLOW_PROTOCOL lists, and never file:// or ext:: whatever it says.
  ['protocol.allow', 'never'],
  ['protocol.https.allow', 'always'],
  ['protocol.http.allow', 'always'],
  ['protocol.file.allow', 'never'],
  ['protocol.ext.allow', 'never'],
  ['protocol.version', '2'],
  ['submodule.recurse', 'false'],
  ['fetch.recurseSubmodules', 'false'],
  // Safety default: a redirect is never followed. curl follows it inside git, out of reach of
  // the URL policy, so a 302 to http://169.254.169.254/ would otherwise be fetched. Refusing
  // them all costs renamed repositories, which must then be submitted under their final URL.
  ['http.followRedirects', 'false'],
  ['http.sslVerify', 'true'],
  // A stalled transfer ends well before the overall timeout would notice.
  ['http.lowSpeedLimit', '1000'],
  ['http.lowSpeedTime', '60'],
  // Every fetch lands as one pack file: the size cap can watch a single growing file, and no
  // burst of loose objects escapes it.
  ['fetch.unpackLimit', '1'],
  ['transfer.unpackLimit', '1'],
  // Housekeeping runs when Patchbay asks, inside its timeout, not detached in the background.
  ['gc.auto', '0'],
  ['maintenance.auto', 'false'],
  ['gc.autoDetach', 'false'],
  ['init.defaultBranch', 'main'],
  ['advice.detachedHead', 'false'],
];

export interface GitRunnerOptions {
  /**
   * HOME of every git process: an empty directory private to Patchbay, so no user's
   * `~/.gitconfig`, `~/.ssh` or `~/.netrc` is ever read.
   */
  homeDir: string;
  /**
   * Let git use ssh (`ssh://` and scp-like URLs).
   * @default false
   */
  allowSsh?: boolean;
  /**
   * The ssh command git runs when ssh is allowed. Batch mode: a host key or passphrase prompt
   * fails instead of hanging.
   * @default 'ssh -o BatchMode=yes'
   */
  sshCommand?: string;
  /**
   * Time limit of one git command, unless the call names its own.
   * @default 120_000
   */
  timeoutMs?: number;
  /**
   * Most stderr bytes kept per command (the tail: that is where git says why it failed).
   * @default 65_536
   */
  maxStderrBytes?: number;
  /**
   * Where the variables in {@link PASSED_ENV} (PATH, proxies, CA bundles) are read from; nothing
   * else is taken from it.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
}

interface ResolvedRunnerOptions {
  homeDir: string;
  allowSsh: boolean;
  sshCommand: string;
  timeoutMs: number;
  maxStderrBytes: number;
  env: Readonly<Record<string, string>>;
}

export interface GitCallOptions {
  /** Repository to act on, passed as `--git-dir` so git never goes looking for one. */
  gitDir?: string;
  /** Working directory of the process. @default the homeDir */
  cwd?: string;
  /** @default the runner's timeoutMs */
  timeoutMs?: number;
  /** Aborting kills the command's whole process group. */
  signal?: AbortSignal;
  /** Bytes for standard input (then closed), or a stream piped into it. @default closed at once */
  stdin?: string | Buffer | Readable;
  /** Extra `-c key=value` settings for this command (e.g. `http.curloptResolve`). */
  config?: Readonly<Record<string, string>>;
  /** Extra environment variables for this command (e.g. `GIT_INDEX_FILE`). */
  env?: Readonly<Record<string, string>>;
}

export interface GitRunOptions extends GitCallOptions {
  /**
   * Most stdout bytes collected; past it the command is killed and `repo_too_large` thrown.
   * @default 16 MiB
   */
  maxStdoutBytes?: number;
}

export interface GitResult {
  /** Exit code; null when the process was ended by a signal. */
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  /** The tail of stderr, credentials redacted. */
  stderr: string;
  durationMs: number;
}

/** A running git command whose stdout the caller consumes as a stream. */
export interface GitProcess {
  readonly stdout: Readable;
  readonly stdin: Writable;
  /**
   * Settles when the process has exited: resolves with its result (stdout empty; it went to the
   * stream), rejects with `timeout` or `cancelled`. Never rejects for a non-zero exit.
   */
  readonly done: Promise<GitResult>;
  /** Kills the whole process group now. */
  kill(): void;
}

/** Hides credentials that may appear in git's messages: URL userinfo and auth headers. */
export function redactSecrets(text: string): string {
  return text
    .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@]+@/gi, '$1[redacted]@')
    .replace(/(authorization:\s*)(\S+\s+)?\S+/gi, '$1[redacted]')
    .replace(/\b((?:access_)?token|password|passwd|secret)=([^\s&]+)/gi, '$1=[redacted]');
}

/**
 * `http.curloptResolve` entries that pin a host to the addresses the URL policy checked, so
 * curl does not resolve it again (DNS rebinding: the second answer could be 127.0.0.1).
 */
export function pinnedResolveConfig(
  host: string,
  port: number,
  addresses: readonly string[],
): Record<string, string> {
  if (isIP(host) !== 0 || addresses.length === 0) return {};
  const list = addresses.map((a) => (isIP(a) === 6 ? `[${a}]` : a)).join(',');
  return { 'http.curloptResolve': `${host}:${port}:${list}` };
}

/**
 * Runs host-side git safely: argv only (never a shell), a scrubbed and fixed environment,
 * configuration that turns off hooks, prompts, credential helpers, dangerous transports,
 * submodules and redirects, a timeout that kills the whole process group, and capped output.
 */
export class GitRunner {
  readonly options: Readonly<ResolvedRunnerOptions>;
  private readonly configArgs: readonly string[];

  constructor(options: GitRunnerOptions) {
    const allowSsh = options.allowSsh ?? false;
    const source = options.env ?? process.env;
    const env: Record<string, string> = {};
    for (const name of PASSED_ENV) {
      const value = source[name];
      if (value !== undefined && value !== '') env[name] = value;
    }
    if (allowSsh && source.SSH_AUTH_SOCK) env.SSH_AUTH_SOCK = source.SSH_AUTH_SOCK;
    env.PATH ??= '/usr/local/bin:/usr/bin:/bin';
    Object.assign(env, {
      HOME: options.homeDir,
      XDG_CONFIG_HOME: options.homeDir,
      // Stable, parseable messages: errors are classified by their text.
      LC_ALL: 'C',
      LANG: 'C',
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_SYSTEM: '/dev/null',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_ATTR_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_ASKPASS: '/bin/false',
      SSH_ASKPASS: '/bin/false',
      SSH_ASKPASS_REQUIRE: 'never',
      GIT_PROTOCOL_FROM_USER: '0',
      GIT_ALLOW_PROTOCOL: allowSsh ? 'https:http:ssh' : 'https:http',
      GIT_NO_REPLACE_OBJECTS: '1',
      GIT_LFS_SKIP_SMUDGE: '1',
    });
    const sshCommand = options.sshCommand ?? 'ssh -o BatchMode=yes';
    if (allowSsh) env.GIT_SSH_COMMAND = sshCommand;
    this.options = {
      homeDir: options.homeDir,
      allowSsh,
      sshCommand,
      timeoutMs: options.timeoutMs ?? 120_000,
      maxStderrBytes: options.maxStderrBytes ?? 65_536,
      env,
    };
    const config: (readonly [string, string])[] = [
      ...FORCED_CONFIG,
      ['protocol.ssh.allow', allowSsh ? 'always' : 'never'],
    ];
    if (allowSsh) config.push(['core.sshCommand', sshCommand]);
    this.configArgs = config.flatMap(([key, value]) => ['-c', `${key}=${value}`]);
  }

  /**
   * What pins git to the addresses the URL policy checked, so that a second DNS answer cannot
   * send it elsewhere (DNS rebinding): `http.curloptResolve` for http(s); for ssh, a
   * `HostName=<address>` with `HostKeyAlias=<host>` so known_hosts is still checked by name.
   * Through an http(s) proxy the proxy resolves the name, and its own egress rules apply.
   */
  pinned(target: {
    scheme: 'https' | 'http' | 'ssh';
    host: string;
    port: number;
    addresses: readonly string[];
  }): Pick<GitCallOptions, 'config' | 'env'> {
    const { scheme, host, port, addresses } = target;
    if (scheme !== 'ssh') return { config: pinnedResolveConfig(host, port, addresses) };
    const [first] = addresses;
    if (isIP(host) !== 0 || first === undefined || !this.options.allowSsh) return {};
    // Safe in a shell command: the policy admitted only a DNS name and IP addresses here.
    return {
      env: {
        GIT_SSH_COMMAND: `${this.options.sshCommand} -o HostName=${first} -o HostKeyAlias=${host}`,
      },
    };
  }

  /** The full argv after `git` for a call: forced config, per-call config, --git-dir, args. */
  argv(args: readonly string[], call: GitCallOptions = {}): string[] {
    const argv = [...this.configArgs];
    for (const [key, value] of Object.entries(call.config ?? {}))
      argv.push('-c', `${key}=${value}`);
    if (call.gitDir !== undefined) argv.push(`--git-dir=${call.gitDir}`);
    argv.push(...args);
    return argv;
  }

  /** The environment a call's process gets. */
  environment(call: GitCallOptions = {}): Record<string, string> {
    return { ...this.options.env, ...call.env };
  }

  /**
   * Runs a git command to completion and collects its output. Resolves for any exit code; rejects
   * with `timeout`, `cancelled`, `repo_too_large` (stdout over its cap) or `internal_error` (git
   * could not be started).
   */
  async run(args: readonly string[], call: GitRunOptions = {}): Promise<GitResult> {
    const maxStdout = call.maxStdoutBytes ?? 16 * 1024 * 1024;
    const proc = this.spawn(args, call);
    const chunks: Buffer[] = [];
    let size = 0;
    let overflow = false;
    proc.stdout.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxStdout) {
        overflow = true;
        proc.kill();
        return;
      }
      chunks.push(chunk);
    });
    const result = await proc.done;
    if (overflow) {
      throw new PatchbayError(
        'repo_too_large',
        `git ${args[0] ?? ''} printed more than ${maxStdout} bytes`,
        { details: { command: args[0], maxBytes: maxStdout } },
      );
    }
    return { ...result, stdout: Buffer.concat(chunks) };
  }

  /**
   * Starts a git command whose stdout the caller reads as a stream (archives, packs, cat-file).
   * The caller must consume `stdout` and await `done`.
   */
  spawn(args: readonly string[], call: GitCallOptions = {}): GitProcess {
    const timeoutMs = call.timeoutMs ?? this.options.timeoutMs;
    const command = args[0] ?? 'git';
    const started = Date.now();
    if (call.signal?.aborted) return failedProcess(cancelled(command));
    let child: ChildProcessWithoutNullStreams;
    try {
      // detached: the child leads its own process group, so a timeout can kill git together with
      // the helpers it starts (git-remote-https, index-pack, ssh). Should the worker itself be
      // SIGKILLed, git runs on until done or stalled (http.lowSpeedTime); the next holder of the
      // repository lock cleans up after it.
      child = spawn('git', this.argv(args, call), {
        cwd: call.cwd ?? this.options.homeDir,
        env: this.environment(call),
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
        windowsHide: true,
      });
    } catch (err) {
      return failedProcess(
        new PatchbayError('internal_error', `could not run git ${command}`, { cause: err }),
      );
    }

    let stderrTail = Buffer.alloc(0);
    const maxStderr = this.options.maxStderrBytes;
    child.stderr.on('data', (chunk: Buffer) => {
      stderrTail = Buffer.concat([stderrTail, chunk]);
      if (stderrTail.length > maxStderr) stderrTail = stderrTail.subarray(-maxStderr);
    });
    // A consumer that stops reading, or git exiting before reading its input, must not crash
    // the worker with EPIPE.
    child.stdin.on('error', () => undefined);

    let reason: 'timeout' | 'aborted' | undefined;
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      reason ??= 'timeout';
      killGroup();
    }, timeoutMs);
    timer.unref();
    const onAbort = () => {
      reason ??= 'aborted';
      killGroup();
    };
    call.signal?.addEventListener('abort', onAbort, { once: true });

    const stdin = call.stdin;
    if (stdin instanceof Readable) {
      stdin.on('error', () => killGroup());
      stdin.pipe(child.stdin);
    } else if (stdin !== undefined) {
      child.stdin.end(stdin);
    } else {
      child.stdin.end();
    }

    const done = new Promise<GitResult>((resolve, reject) => {
      child.once('error', (err) => {
        clearTimeout(timer);
        call.signal?.removeEventListener('abort', onAbort);
        reject(
          new PatchbayError('internal_error', `could not run git: ${err.message}`, { cause: err }),
        );
      });
      child.once('close', (exitCode, signal) => {
        clearTimeout(timer);
        call.signal?.removeEventListener('abort', onAbort);
        const stderr = redactSecrets(stderrTail.toString('utf8'));
        if (reason === 'timeout') {
          reject(
            new PatchbayError(
              'timeout',
              `git ${command} did not finish within ${Math.round(timeoutMs / 1000)}s`,
              { details: { command, timeoutMs, stderr: tail(stderr) } },
            ),
          );
          return;
        }
        if (reason === 'aborted') {
          reject(cancelled(command));
          return;
        }
        resolve({
          exitCode,
          signal,
          stdout: Buffer.alloc(0),
          stderr,
          durationMs: Date.now() - started,
        });
      });
    });
    // The caller may only look at `done` after consuming stdout; an early rejection must not
    // count as unhandled meanwhile.
    done.catch(() => undefined);
    return { stdout: child.stdout, stdin: child.stdin, done, kill: killGroup };
  }
}

function cancelled(command: string): PatchbayError {
  return new PatchbayError('cancelled', `git ${command} was cancelled`, { details: { command } });
}

/** A process that never started: empty streams and a rejected `done`. */
function failedProcess(error: PatchbayError): GitProcess {
  const done = Promise.reject(error);
  done.catch(() => undefined);
  return { stdout: Readable.from([]), stdin: new PassThrough(), done, kill: () => undefined };
}

/** The last few lines of a message, for error details. */
export function tail(text: string, maxChars = 2000): string {
  const trimmed = text.trim();
  return trimmed.length <= maxChars ? trimmed : `…${trimmed.slice(-maxChars)}`;
}
