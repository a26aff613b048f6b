import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * What a path holds after a commit: text or bytes (mode 100644), `{ content, executable }`,
 * `{ symlink: target }`, `{ gitlink: sha }` (a submodule entry), or `null` to delete the path.
 */
export type FileSpec =
  | string
  | Buffer
  | { content: string | Buffer; executable: true }
  | { symlink: string }
  | { gitlink: string }
  | null;

/**
 * Environment of the fixture builder's own git: no system or global config, fixed identity and
 * dates, so fixture shas only change when the fixture does.
 */
function fixtureEnv(date: number): NodeJS.ProcessEnv {
  const stamp = `${date} +0000`;
  return {
    PATH: process.env.PATH,
    HOME: tmpdir(),
    LC_ALL: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: '/dev/null',
    GIT_AUTHOR_NAME: 'Fixture',
    GIT_AUTHOR_EMAIL: 'fixture@example.test',
    GIT_COMMITTER_NAME: 'Fixture',
    GIT_COMMITTER_EMAIL: 'fixture@example.test',
    GIT_AUTHOR_DATE: stamp,
    GIT_COMMITTER_DATE: stamp,
  };
}

/**
 * A non-bare repository built by a test, served as-is by the test git server. Only fixtures the
 * tests write themselves are ever checked out on the host.
 */
export class FixtureRepo {
  /** Seconds since the epoch of the next commit; each commit moves it on by a minute. */
  private clock = 1_700_000_000;

  private constructor(readonly dir: string) {}

  /** An empty repository whose first branch is `branch`. */
  static async create(dir: string, branch = 'main'): Promise<FixtureRepo> {
    await mkdir(dir, { recursive: true });
    const repo = new FixtureRepo(dir);
    await repo.git('init', '-q', `--initial-branch=${branch}`);
    // The fixture's own worktree must keep bytes exactly as the test wrote them.
    await repo.git('config', 'core.autocrlf', 'false');
    await repo.git('config', 'core.symlinks', 'true');
    return repo;
  }

  /** A repository in a fresh temporary directory. */
  static async temp(branch = 'main'): Promise<FixtureRepo> {
    return FixtureRepo.create(await mkdtemp(join(tmpdir(), 'patchbay-fixture-')), branch);
  }

  async git(...args: string[]): Promise<string> {
    const { stdout } = await execFileAsync('git', args, {
      cwd: this.dir,
      env: fixtureEnv(this.clock),
      maxBuffer: 256 * 1024 * 1024,
    });
    return stdout;
  }

  /** Writes the files, stages everything and commits; returns the new commit's sha. */
  async commit(files: Record<string, FileSpec>, message = 'fixture commit'): Promise<string> {
    for (const [path, spec] of Object.entries(files)) {
      const full = join(this.dir, path);
      if (spec === null) {
        await this.git('rm', '-q', '-r', '--cached', '--ignore-unmatch', '--', path);
        await rm(full, { recursive: true, force: true });
        continue;
      }
      await mkdir(dirname(full), { recursive: true });
      await rm(full, { recursive: true, force: true });
      if (typeof spec === 'string' || Buffer.isBuffer(spec)) {
        await writeFile(full, spec, { mode: 0o644 });
      } else if ('symlink' in spec) {
        await symlink(spec.symlink, full);
      } else if ('gitlink' in spec) {
        await this.git('update-index', '--add', '--cacheinfo', `160000,${spec.gitlink},${path}`);
        continue;
      } else {
        await writeFile(full, spec.content, { mode: 0o755 });
      }
      // -f: fixtures may commit paths a .gitignore of their own would hide.
      await this.git('add', '-f', '--', path);
    }
    await this.git('commit', '-q', '--allow-empty', '--no-verify', '-m', message);
    this.clock += 60;
    return this.head();
  }

  /** Runs git with bytes on stdin; resolves with stdout as bytes (names may not be UTF-8). */
  async gitBytes(args: string[], input: Buffer | string = ''): Promise<Buffer> {
    const child = spawn('git', args, { cwd: this.dir, env: fixtureEnv(this.clock) });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
    const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
    if (code !== 0) throw new Error(`git ${args.join(' ')} failed: ${err}`);
    return Buffer.concat(out);
  }

  /** Runs git with bytes on stdin; resolves with stdout as text. */
  async gitInput(args: string[], input: Buffer | string = ''): Promise<string> {
    return (await this.gitBytes(args, input)).toString();
  }

  /** Entries of a tree (`ls-tree -z`), names as raw bytes. */
  async lsTree(
    rev: string,
    recursive = false,
  ): Promise<{ mode: string; type: 'blob' | 'tree' | 'commit'; oid: string; name: Buffer }[]> {
    const args = ['ls-tree', '-z', ...(recursive ? ['-r', '--full-tree'] : []), rev];
    const out = await this.gitBytes(args);
    const entries = [];
    for (let start = 0; start < out.length;) {
      const end = out.indexOf(0, start);
      const record = out.subarray(start, end);
      start = end + 1;
      const tab = record.indexOf(9);
      const [mode, type, oid] = record.subarray(0, tab).toString().split(' ') as [
        string,
        'blob' | 'tree' | 'commit',
        string,
      ];
      entries.push({ mode, type, oid, name: Buffer.from(record.subarray(tab + 1)) });
    }
    return entries;
  }

  /** Writes a blob; returns its id. */
  async blob(content: Buffer | string): Promise<string> {
    return (await this.gitInput(['hash-object', '-w', '--stdin'], content)).trim();
  }

  /**
   * Writes a tree straight from entries, names as raw bytes — the way a hostile repository is
   * made, since `git add` refuses names such as `.git` or `..`.
   */
  async mktree(
    entries: {
      mode: string;
      type: 'blob' | 'tree' | 'commit';
      oid: string;
      name: Buffer | string;
    }[],
  ): Promise<string> {
    const input = Buffer.concat(
      entries.map((e) =>
        Buffer.concat([
          Buffer.from(`${e.mode} ${e.type} ${e.oid}\t`),
          Buffer.isBuffer(e.name) ? e.name : Buffer.from(e.name),
          Buffer.from([0]),
        ]),
      ),
    );
    return (await this.gitInput(['mktree', '-z', '--missing'], input)).trim();
  }

  /** Commits a tree made by {@link mktree} on top of the current branch. */
  async commitTree(tree: string, message = 'raw tree'): Promise<string> {
    const parent = await this.git('rev-parse', '--verify', '-q', 'HEAD').catch(() => '');
    const args = ['commit-tree', tree, '-m', message];
    if (parent.trim() !== '') args.push('-p', parent.trim());
    const sha = (await this.git(...args)).trim();
    await this.git('update-ref', 'HEAD', sha);
    this.clock += 60;
    return sha;
  }

  /** Full sha of HEAD (or of any revision). */
  async head(rev = 'HEAD'): Promise<string> {
    return (await this.git('rev-parse', '--verify', `${rev}^{commit}`)).trim();
  }

  async branch(name: string, from = 'HEAD'): Promise<void> {
    await this.git('branch', '-f', name, from);
  }

  async checkout(name: string): Promise<void> {
    await this.git('checkout', '-q', name);
  }

  /** A lightweight tag, or an annotated one with a message. */
  async tag(name: string, options: { annotated?: boolean; at?: string } = {}): Promise<void> {
    const at = options.at ?? 'HEAD';
    if (options.annotated === true) await this.git('tag', '-a', '-m', `tag ${name}`, name, at);
    else await this.git('tag', name, at);
  }
}

/** Bytes that are not text: every byte value, NULs and an invalid UTF-8 run included. */
export function binaryBytes(size = 4096): Buffer {
  const out = Buffer.alloc(size);
  for (let i = 0; i < size; i++) out[i] = (i * 131 + (i >> 8)) & 0xff;
  return out;
}
