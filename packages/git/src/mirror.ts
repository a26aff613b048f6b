import { createHash, randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join, resolve as resolvePath } from 'node:path';
import type { Readable } from 'node:stream';
import { PatchbayError, isPatchbayError, type Logger } from '@patchbay/core';
import { acquireFileLock } from './file-lock.js';
import { parseRef, type RefRequest } from './refs.js';
import { pushPatch, type PushRequest, type PushResult } from './push.js';
import { classifyRemoteFailure, type RemoteFailure } from './remote-failure.js';
import { GitRunner, tail, type GitResult } from './run-git.js';
import {
  exportTree,
  exportWorkspace,
  type TreeExportOptions,
  type WorkspaceExportOptions,
} from './tree.js';
import type { Mirror } from './types.js';
import {
  checkRepoUrl,
  checkRepoUrlSyntax,
  compileRepoUrlPolicy,
  defaultResolver,
  RepoUrlPolicy,
  type CheckedRepoUrl,
  type HostResolver,
  type RepoUrlPolicyOptions,
} from './url-policy.js';

export interface MirrorCacheOptions {
  /** Directory of the mirrors: the worker's data dir + `/mirrors`. Workers may share it. */
  root: string;
  /**
   * Which repository URLs may be fetched.
   * @default compileRepoUrlPolicy() — https to github.com, gitlab.com and bitbucket.org
   */
  policy?: RepoUrlPolicy | RepoUrlPolicyOptions;
  /**
   * Resolves repository hosts for the URL policy's address checks.
   * @default dns.promises.lookup with all: true
   */
  resolver?: HostResolver;
  /**
   * Largest a mirror may grow on disk, in bytes. Checked while a fetch streams in (the incoming
   * pack is watched) and after it; a mirror over it is deleted and `repo_too_large` thrown.
   * @default 2 GiB
   */
  maxMirrorBytes?: number;
  /**
   * Time limit of one fetch.
   * @default 300_000
   */
  fetchTimeoutMs?: number;
  /**
   * Time limit of every other git command (rev-parse, init, housekeeping).
   * @default 60_000
   */
  gitTimeoutMs?: number;
  /**
   * Longest wait for another worker's lock on the same repository.
   * @default fetchTimeoutMs + 60_000
   */
  lockWaitMs?: number;
  /**
   * A repository lock whose holder stopped refreshing it this long ago is taken over.
   * @default 30_000
   */
  staleLockMs?: number;
  /**
   * A branch or tag (or the default branch) resolved less than this long ago (by this process)
   * is answered from the mirror without asking the remote. 0 always asks: a branch may have moved.
   * @default 0
   */
  refreshAfterMs?: number;
  /**
   * Workspace exports (pack, index) kept for reuse by later tasks on the same commit.
   * @default 16
   */
  maxCachedExports?: number;
  /**
   * Allow ssh; the policy must allow it too.
   * @default the policy's allowSsh
   */
  allowSsh?: boolean;
  /** ssh command when ssh is allowed. @default 'ssh -o BatchMode=yes' */
  sshCommand?: string;
  /**
   * Where PATH, proxy and CA variables for git are read from; nothing else is taken from it.
   * @default process.env
   */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface ResolvedCommit {
  /** Full commit sha (40 hex digits). */
  sha: string;
  /** The normalised repository URL (the mirror's key). */
  url: string;
  /** Whether the remote was contacted; false when the mirror already had the answer. */
  fetched: boolean;
}

/** Anything that can take a tar stream into a directory — a `Sandbox` does. */
export interface ArchiveTarget {
  putArchive(tar: Readable, options?: { path?: string; signal?: AbortSignal }): Promise<void>;
}

export interface CheckoutOptions extends WorkspaceExportOptions {
  /** Directory the repository lands in. @default '/workspace' */
  path?: string;
}

/** The oldest git that has every safety setting used here (http.curloptResolve: 2.37). */
const MIN_GIT_VERSION = [2, 37] as const;

/** In-process queues per lock path, shared by every MirrorCache of this process. */
const inProcessLocks = new Map<string, Promise<void>>();

/** Bytes used by a directory tree (apparent sizes; symlinks are not followed). */
async function diskUsage(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += await diskUsage(path);
    else
      total += await lstat(path).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Short stable name of a ref, for the mirror's own refs (ref names may nest: `a` and `a/b`). */
function refKey(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 32);
}

/** Where the mirror keeps what a fetch of `name` (a ref, or HEAD) found. */
function localRef(name: string): string {
  return name === 'HEAD' ? 'refs/patchbay/head' : `refs/patchbay/r/${refKey(name)}`;
}

const FAILURE_MESSAGES: Record<Exclude<RemoteFailure, 'ref_not_found'>, string> = {
  redirect:
    'the repository answered with a redirect, which is never followed; submit its final URL',
  auth: 'the repository needs credentials (or does not exist)',
  not_found: 'the repository does not exist',
  network: 'the repository host could not be reached',
  git_error: 'fetching the repository failed',
};

/**
 * Bare mirrors of remote repositories on the worker, one per normalised URL: fetched into,
 * never checked out. Every repository operation goes through the URL policy first, then takes
 * the repository's lock (in-process and cross-process), so two tasks, or two workers sharing
 * the directory, never fetch into one mirror at once.
 */
export class MirrorCache {
  readonly root: string;
  readonly git: GitRunner;
  private readonly policy: RepoUrlPolicy;
  private readonly resolver: HostResolver;
  private readonly maxMirrorBytes: number;
  private readonly fetchTimeoutMs: number;
  private readonly gitTimeoutMs: number;
  private readonly lockWaitMs: number;
  private readonly staleLockMs: number;
  private readonly refreshAfterMs: number;
  private readonly maxCachedExports: number;
  private readonly logger: Logger | undefined;
  private readonly lastFetched = new Map<string, number>();
  private ready: Promise<void> | undefined;

  constructor(options: MirrorCacheOptions) {
    this.root = resolvePath(options.root);
    this.policy =
      options.policy instanceof RepoUrlPolicy
        ? options.policy
        : compileRepoUrlPolicy(options.policy);
    this.resolver = options.resolver ?? defaultResolver;
    this.maxMirrorBytes = options.maxMirrorBytes ?? 2 * 1024 ** 3;
    this.fetchTimeoutMs = options.fetchTimeoutMs ?? 300_000;
    this.gitTimeoutMs = options.gitTimeoutMs ?? 60_000;
    this.lockWaitMs = options.lockWaitMs ?? this.fetchTimeoutMs + 60_000;
    this.staleLockMs = options.staleLockMs ?? 30_000;
    this.refreshAfterMs = options.refreshAfterMs ?? 0;
    this.maxCachedExports = options.maxCachedExports ?? 16;
    this.logger = options.logger;
    const runner: ConstructorParameters<typeof GitRunner>[0] = {
      homeDir: join(this.root, '.home'),
      allowSsh: options.allowSsh ?? this.policy.allowSsh,
      timeoutMs: this.gitTimeoutMs,
    };
    if (options.sshCommand !== undefined) runner.sshCommand = options.sshCommand;
    if (options.env !== undefined) runner.env = options.env;
    this.git = new GitRunner(runner);
  }

  /** Creates the directories and checks the git version, once. */
  private init(): Promise<void> {
    return (this.ready ??= (async () => {
      await mkdir(join(this.root, '.home'), { recursive: true, mode: 0o700 });
      await mkdir(join(this.root, 'exports'), { recursive: true });
      const result = await this.git.run(['version']);
      const match = /git version (\d+)\.(\d+)/.exec(result.stdout.toString());
      const [major, minor] = [Number(match?.[1] ?? 0), Number(match?.[2] ?? 0)];
      if (
        major < MIN_GIT_VERSION[0] ||
        (major === MIN_GIT_VERSION[0] && minor < MIN_GIT_VERSION[1])
      ) {
        throw new PatchbayError(
          'internal_error',
          `git ${MIN_GIT_VERSION.join('.')} or newer is needed on the worker (found ${match?.[0] ?? 'none'})`,
        );
      }
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    }));
  }

  /**
   * The mirror of a repository URL, without touching the network or the disk. Applies the URL
   * policy's syntax checks (no DNS) so that only a URL the policy accepts names a mirror.
   * @throws PatchbayError `repo_url_refused`
   */
  mirror(url: string): Mirror {
    const checked = checkRepoUrlSyntax(url, this.policy);
    if (!checked.ok) throw checked.error;
    return this.mirrorOf(checked.url);
  }

  private mirrorOf(normalisedUrl: string): Mirror {
    const key = createHash('sha256').update(normalisedUrl).digest('hex').slice(0, 40);
    return {
      url: normalisedUrl,
      gitDir: join(this.root, `${key}.git`),
      exportsDir: join(this.root, 'exports'),
      git: this.git,
      maxCachedExports: this.maxCachedExports,
    };
  }

  /**
   * Resolves a ref of a repository to a full commit sha, fetching what is missing.
   *
   * - `ref` omitted, null or `HEAD`: the remote's default branch.
   * - a branch or tag name (`main`, `v1.2`, `refs/heads/x`): fetched by name, incrementally
   *   when the mirror is warm.
   * - a full sha: answered from the mirror when present (no network at all), else fetched.
   * - an abbreviated sha: looked up in the mirror, then as a name, then after fetching every
   *   branch and tag.
   *
   * @throws PatchbayError `repo_url_refused`, `validation_error` (bad ref), `repo_unreachable`,
   * `ref_not_found`, `repo_too_large`, `timeout`, `cancelled`.
   */
  async resolve(
    url: string,
    ref?: string | null,
    options: { signal?: AbortSignal } = {},
  ): Promise<ResolvedCommit> {
    const { signal } = options;
    const wanted = parseRef(ref);
    const syntax = checkRepoUrlSyntax(url, this.policy);
    if (!syntax.ok) throw syntax.error;
    await this.init();
    const mirror = this.mirrorOf(syntax.url);
    const log = { url: syntax.url, ref: ref ?? 'HEAD' };

    // Fast path, no lock and no network (not even DNS): a full sha the mirror already has.
    if (wanted.kind === 'sha' && (await this.hasCommit(mirror, wanted.sha, signal))) {
      this.logger?.debug({ ...log, sha: wanted.sha }, 'commit already mirrored; fetch skipped');
      return { sha: wanted.sha, url: syntax.url, fetched: false };
    }

    // Everything else may connect: the full check, DNS included, comes first.
    const checked = await checkRepoUrl(url, this.policy, this.resolver);
    if (!checked.ok) throw checked.error;
    if (signal?.aborted) throw new PatchbayError('cancelled', 'the fetch was cancelled');

    return this.withLock(mirror, signal, async (tookOverStale) => {
      await this.ensureMirror(mirror, tookOverStale, signal);
      const started = Date.now();
      const result = await this.resolveLocked(mirror, checked, wanted, signal);
      this.logger?.info(
        { ...log, sha: result.sha, fetched: result.fetched, ms: Date.now() - started },
        result.fetched ? 'fetched repository' : 'resolved from mirror',
      );
      return result;
    });
  }

  private async resolveLocked(
    mirror: Mirror,
    checked: CheckedRepoUrl,
    wanted: RefRequest,
    signal: AbortSignal | undefined,
  ): Promise<ResolvedCommit> {
    const done = (sha: string, fetched: boolean): ResolvedCommit => ({
      sha,
      url: checked.url,
      fetched,
    });
    switch (wanted.kind) {
      case 'head':
      case 'name': {
        const name = wanted.kind === 'head' ? 'HEAD' : wanted.name;
        const recent = this.lastFetched.get(`${mirror.gitDir}\0${name}`);
        if (
          this.refreshAfterMs > 0 &&
          recent !== undefined &&
          Date.now() - recent < this.refreshAfterMs
        ) {
          const sha = await this.localCommit(mirror, localRef(name), signal);
          if (sha !== undefined) return done(sha, false);
        }
        return done(await this.fetchName(mirror, checked, name, signal), true);
      }
      case 'sha': {
        // Checked again under the lock: a concurrent resolve may have fetched it meanwhile.
        if (await this.hasCommit(mirror, wanted.sha, signal)) return done(wanted.sha, false);
        try {
          await this.fetch(
            mirror,
            checked,
            [`+${wanted.sha}:refs/patchbay/c/${wanted.sha}`],
            signal,
          );
        } catch (err) {
          // Servers that refuse unadvertised shas: fetch every branch and tag, then look.
          if (!isPatchbayError(err, 'ref_not_found')) throw err;
          await this.fetchAll(mirror, checked, signal);
        }
        if (await this.hasCommit(mirror, wanted.sha, signal)) return done(wanted.sha, true);
        throw notFound(wanted.sha);
      }
      case 'abbrev': {
        const local = await this.localCommit(mirror, wanted.prefix, signal);
        if (local !== undefined) return done(local, false);
        try {
          // Hex-looking names can be branches ("cafe", "1234").
          return done(await this.fetchName(mirror, checked, wanted.prefix, signal), true);
        } catch (err) {
          if (!isPatchbayError(err, 'ref_not_found')) throw err;
        }
        await this.fetchAll(mirror, checked, signal);
        const sha = await this.localCommit(mirror, wanted.prefix, signal);
        if (sha === undefined) throw notFound(wanted.prefix);
        return done(sha, true);
      }
    }
  }

  /** Fetches one name (the remote resolves it as `git fetch` does) and peels it to a commit. */
  private async fetchName(
    mirror: Mirror,
    checked: CheckedRepoUrl,
    name: string,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    const local = localRef(name);
    await this.fetch(mirror, checked, [`+${name}:${local}`], signal);
    const sha = await this.localCommit(mirror, local, signal);
    if (sha === undefined) {
      throw new PatchbayError('ref_not_found', `${name} does not name a commit`, {
        details: { ref: name },
      });
    }
    this.lastFetched.set(`${mirror.gitDir}\0${name}`, Date.now());
    return sha;
  }

  private async fetchAll(
    mirror: Mirror,
    checked: CheckedRepoUrl,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    await this.fetch(
      mirror,
      checked,
      ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'],
      signal,
    );
  }

  /**
   * `git fetch --no-tags <url> <refspecs>` into the mirror, pinned to the checked addresses,
   * with the incoming pack watched against the size cap.
   */
  private async fetch(
    mirror: Mirror,
    checked: CheckedRepoUrl,
    refspecs: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const baseline = await diskUsage(mirror.gitDir);
    if (baseline > this.maxMirrorBytes) {
      await this.discard(mirror);
      throw this.tooLarge(mirror, baseline);
    }
    const started = Date.now();
    const proc = this.git.spawn(
      [
        'fetch',
        '--quiet',
        '--no-tags',
        '--no-recurse-submodules',
        '--no-write-fetch-head',
        '--no-show-forced-updates',
        '--',
        checked.url,
        ...refspecs,
      ],
      {
        gitDir: mirror.gitDir,
        timeoutMs: this.fetchTimeoutMs,
        ...(signal ? { signal } : {}),
        ...this.git.pinned(checked),
      },
    );
    proc.stdout.resume();
    let incomingTooLarge = false;
    let ended = false;
    const packDir = join(mirror.gitDir, 'objects', 'pack');
    const watch = setInterval(() => {
      void incomingBytes(packDir).then((incoming) => {
        if (!ended && baseline + incoming > this.maxMirrorBytes) {
          incomingTooLarge = true;
          proc.kill();
        }
      });
    }, 200);
    let result: GitResult;
    try {
      result = await proc.done;
    } catch (err) {
      await this.cleanLeftovers(mirror);
      throw err;
    } finally {
      ended = true;
      clearInterval(watch);
    }
    if (incomingTooLarge) {
      await this.cleanLeftovers(mirror);
      throw this.tooLarge(mirror, undefined);
    }
    if (result.exitCode !== 0) {
      await this.cleanLeftovers(mirror);
      throw fetchError(result, refspecs);
    }
    const size = await diskUsage(mirror.gitDir);
    if (size > this.maxMirrorBytes) {
      await this.discard(mirror);
      throw this.tooLarge(mirror, size);
    }
    this.logger?.debug(
      { url: mirror.url, refspecs, ms: Date.now() - started, bytes: size },
      'fetch done',
    );
    await this.housekeeping(mirror, signal);
  }

  /**
   * Incremental fetches land one small pack each (unpackLimit=1); consolidate them now and then
   * so lookups stay fast. Failures only cost speed, so they are logged, not thrown.
   */
  private async housekeeping(mirror: Mirror, signal: AbortSignal | undefined): Promise<void> {
    const packs = await readdir(join(mirror.gitDir, 'objects', 'pack')).catch(() => []);
    if (packs.filter((name) => name.endsWith('.pack')).length <= 20) return;
    try {
      const result = await this.git.run(['repack', '-a', '-d', '-q'], {
        gitDir: mirror.gitDir,
        timeoutMs: this.fetchTimeoutMs,
        ...(signal ? { signal } : {}),
      });
      if (result.exitCode !== 0) {
        this.logger?.warn({ url: mirror.url, stderr: tail(result.stderr) }, 'repack failed');
      }
    } catch (err) {
      if (isPatchbayError(err, 'cancelled')) throw err;
      this.logger?.warn({ url: mirror.url, err }, 'repack failed');
    }
  }

  private tooLarge(mirror: Mirror, bytes: number | undefined): PatchbayError {
    return new PatchbayError(
      'repo_too_large',
      `the repository is larger than the ${Math.round(this.maxMirrorBytes / 1024 ** 2)} MiB allowed`,
      { details: { url: mirror.url, maxBytes: this.maxMirrorBytes, ...(bytes ? { bytes } : {}) } },
    );
  }

  /** Removes what an interrupted git leaves behind: temporary packs and lock files. */
  private async cleanLeftovers(mirror: Mirror): Promise<void> {
    const packDir = join(mirror.gitDir, 'objects', 'pack');
    for (const name of await readdir(packDir).catch(() => [] as string[])) {
      if (name.startsWith('tmp_') || name.startsWith('.tmp-')) {
        await rm(join(packDir, name), { force: true });
      }
    }
    const removeLocks = async (dir: string): Promise<void> => {
      for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await removeLocks(path);
        else if (entry.name.endsWith('.lock')) await rm(path, { force: true });
      }
    };
    await removeLocks(join(mirror.gitDir, 'refs'));
    for (const name of [
      'packed-refs.lock',
      'shallow.lock',
      'config.lock',
      'HEAD.lock',
      'index.lock',
    ]) {
      await rm(join(mirror.gitDir, name), { force: true });
    }
  }

  private async discard(mirror: Mirror): Promise<void> {
    this.logger?.warn({ url: mirror.url }, 'discarding mirror');
    await rm(mirror.gitDir, { recursive: true, force: true });
  }

  /** Creates the bare repository if it is missing (or half made); tidies after a dead holder. */
  private async ensureMirror(
    mirror: Mirror,
    tookOverStale: boolean,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    if (await exists(join(mirror.gitDir, 'HEAD'))) {
      if (tookOverStale) await this.cleanLeftovers(mirror);
      return;
    }
    await rm(mirror.gitDir, { recursive: true, force: true });
    // Made aside and renamed into place, so a crash never leaves a half-initialised mirror.
    const temp = `${mirror.gitDir}.tmp-${randomBytes(6).toString('hex')}`;
    try {
      // --template= : no sample hooks or other template files in the mirror.
      const result = await this.git.run(['init', '--bare', '--quiet', '--template=', temp], {
        ...(signal ? { signal } : {}),
      });
      if (result.exitCode !== 0) {
        throw new PatchbayError('internal_error', `git init failed: ${tail(result.stderr)}`);
      }
      await writeFile(join(temp, 'patchbay-url'), `${mirror.url}\n`);
      await rename(temp, mirror.gitDir);
    } finally {
      await rm(temp, { recursive: true, force: true });
    }
  }

  private async hasCommit(
    mirror: Mirror,
    sha: string,
    signal: AbortSignal | undefined,
  ): Promise<boolean> {
    if (!(await exists(join(mirror.gitDir, 'HEAD')))) return false;
    return (await this.localCommit(mirror, sha, signal)) === sha;
  }

  /** The commit a revision names in the mirror (peeling tags), or undefined. */
  private async localCommit(
    mirror: Mirror,
    rev: string,
    signal: AbortSignal | undefined,
  ): Promise<string | undefined> {
    const result = await this.git.run(['rev-parse', '--verify', '--quiet', `${rev}^{commit}`], {
      gitDir: mirror.gitDir,
      ...(signal ? { signal } : {}),
    });
    const sha = result.stdout.toString().trim();
    return result.exitCode === 0 && /^[0-9a-f]{40}$/.test(sha) ? sha : undefined;
  }

  /** Runs `fn` holding the repository's lock: first in this process, then across processes. */
  private async withLock<T>(
    mirror: Mirror,
    signal: AbortSignal | undefined,
    fn: (tookOverStale: boolean) => Promise<T>,
  ): Promise<T> {
    const lockPath = `${mirror.gitDir}.lock`;
    const previous = inProcessLocks.get(lockPath) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chain = previous.then(() => mine);
    inProcessLocks.set(lockPath, chain);
    try {
      await abortable(previous, signal);
      const started = Date.now();
      const lock = await acquireFileLock(lockPath, {
        staleMs: this.staleLockMs,
        waitMs: this.lockWaitMs,
        ...(signal ? { signal } : {}),
        onStale: (holder) =>
          this.logger?.warn({ url: mirror.url, holder }, 'took over a stale repository lock'),
      });
      const waited = Date.now() - started;
      if (waited > 1000)
        this.logger?.debug({ url: mirror.url, ms: waited }, 'waited for repository lock');
      try {
        return await fn(lock.tookOverStale);
      } finally {
        await lock.release();
      }
    } finally {
      release();
      if (inProcessLocks.get(lockPath) === chain) inProcessLocks.delete(lockPath);
    }
  }

  /**
   * Commits `baseCommit` + patch in the repository's mirror and pushes it to a branch of the
   * remote, with the credential given (see {@link pushPatch}); holds the repository's lock, so
   * fetches and other deliveries to it wait.
   * @throws PatchbayError `repo_url_refused`, `branch_protected`, `branch_exists`,
   * `delivery_auth_failed`, `delivery_failed`
   */
  async deliver(url: string, request: PushRequest): Promise<PushResult> {
    // The base commit must be in the mirror (it is unless the mirror was dropped since the task).
    await this.resolve(url, request.baseCommit, request.signal ? { signal: request.signal } : {});
    const checked = await checkRepoUrl(url, this.policy, this.resolver);
    if (!checked.ok) throw checked.error;
    const mirror = this.mirrorOf(checked.url);
    return this.withLock(mirror, request.signal, () =>
      pushPatch(mirror, checked, this.git.pinned(checked), request),
    );
  }

  /**
   * A tar stream of the tree at `sha`, content exactly as committed: see {@link exportTree}.
   * The commit must have been resolved first.
   */
  async exportTree(url: string, sha: string, options: TreeExportOptions = {}): Promise<Readable> {
    await this.init();
    return exportTree(this.mirror(url), sha, options);
  }

  /**
   * A tar stream that, extracted into an empty directory, makes it a git repository whose HEAD
   * is `sha` with a clean status: see {@link exportWorkspace}.
   */
  async exportWorkspace(
    url: string,
    sha: string,
    options: WorkspaceExportOptions = {},
  ): Promise<Readable> {
    await this.init();
    return exportWorkspace(this.mirror(url), sha, options);
  }

  /**
   * Puts the repository at `sha` into a sandbox (or anything with `putArchive`): one tar stream,
   * no command run inside. The directory must be empty.
   */
  async checkout(
    target: ArchiveTarget,
    url: string,
    sha: string,
    options: CheckoutOptions = {},
  ): Promise<void> {
    const { path = '/workspace', ...exportOptions } = options;
    const tar = await this.exportWorkspace(url, sha, exportOptions);
    try {
      await target.putArchive(tar, { path, ...(options.signal ? { signal: options.signal } : {}) });
    } finally {
      tar.destroy();
    }
  }
}

/** Sizes of the packs a running fetch is writing. */
async function incomingBytes(packDir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(packDir).catch(() => [] as string[])) {
    if (!name.startsWith('tmp_')) continue;
    total += await stat(join(packDir, name)).then(
      (s) => s.size,
      () => 0,
    );
  }
  return total;
}

function notFound(ref: string): PatchbayError {
  return new PatchbayError('ref_not_found', `no commit ${ref} in the repository`, {
    details: { ref },
  });
}

function fetchError(result: GitResult, refspecs: readonly string[]): PatchbayError {
  const failure = classifyRemoteFailure(result.stderr);
  const stderr = tail(result.stderr);
  if (failure === 'ref_not_found') {
    const ref = refspecs[0]?.replace(/^\+/, '').split(':')[0] ?? '';
    return new PatchbayError('ref_not_found', `the repository has no ref ${ref}`, {
      details: { ref, stderr },
    });
  }
  return new PatchbayError('repo_unreachable', FAILURE_MESSAGES[failure], {
    details: { reason: failure, exitCode: result.exitCode, stderr },
  });
}

/** Waits for `promise`, or rejects with `cancelled` as soon as `signal` aborts. */
async function abortable(promise: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (!signal) return promise;
  if (signal.aborted) throw new PatchbayError('cancelled', 'gave up waiting for a repository lock');
  let onAbort!: () => void;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(new PatchbayError('cancelled', 'gave up waiting for a repository lock'));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([promise, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
