/**
 * Replay instances: a real repository's upstream fix, replayed through the service. An instance
 * names the fix commit; its base is the fix's first parent, and the upstream change is split into
 * the test files (applied in both runs) and the rest (the fix, applied only in the first).
 */
import { execFile } from 'node:child_process';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { z } from 'zod';
import { isTestPath, parseGitDiff, pathOf, toApplyPatch } from './patches.js';

const exec = promisify(execFile);

export const Instance = z.strictObject({
  /** Unique, `[a-z0-9-]`: it names the task's scenario and the results. */
  id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/),
  /** `owner/name` of the upstream repository (where its mirror is looked for). */
  repo: z.string().regex(/^[\w.-]+\/[\w.-]+$/),
  /** The upstream commit that fixed it; the base is its first parent. */
  fix: z.string().regex(/^[0-9a-f]{40}$/),
  /** The sandbox's setup (installs the dependencies; the network is on for it). */
  setup: z.string().min(1),
  /** Runs the instance's tests; verify. Exit 0 with the fix, non-zero without it. */
  test: z.string().min(1),
  /** Tests that fail without the fix and pass with it, as the runner names them. */
  failToPass: z.array(z.string().min(1)).min(1),
  /** Tests of the same command that pass both ways. */
  passToPass: z.array(z.string()).default([]),
  /** Test runner and package manager, for the table. */
  runner: z.string(),
  packageManager: z.string(),
  /** How the instance was made (which upstream change, what was checked). */
  made: z.string(),
});
export type Instance = z.infer<typeof Instance>;

const InstanceFile = z.strictObject({ instances: z.array(Instance).min(1) });

/** Reads and checks an instances file; ids must be unique. */
export async function loadInstances(path: string): Promise<Instance[]> {
  const { instances } = InstanceFile.parse(JSON.parse(await readFile(path, 'utf8')));
  const seen = new Set<string>();
  for (const { id } of instances) {
    if (seen.has(id)) throw new Error(`${path}: instance ${id} appears twice`);
    seen.add(id);
  }
  return instances;
}

/**
 * Where the repositories' full clones live: `<dir>/<owner>+<name>/repo` (the layout the
 * project's fetch tool leaves) or `<dir>/<owner>/<name>.git`.
 */
export async function mirrorOf(dir: string, repo: string): Promise<string> {
  const [owner, name] = repo.split('/') as [string, string];
  const candidates = [join(dir, `${owner}+${name}`, 'repo'), join(dir, owner, `${name}.git`)];
  for (const candidate of candidates) {
    if (
      await access(join(candidate, 'HEAD')).then(
        () => true,
        () => false,
      )
    )
      return candidate;
  }
  throw new Error(
    `no clone of ${repo} under ${dir} (looked for ${candidates.join(' and ')}); fetch it first`,
  );
}

export async function git(dir: string, ...args: string[]): Promise<string> {
  const { stdout } = await exec('git', ['-c', 'core.hooksPath=/dev/null', ...args], {
    cwd: dir,
    maxBuffer: 256 * 1024 * 1024,
  });
  return stdout;
}

/** An instance made concrete from its repository: the base and the two patches. */
export interface Prepared {
  instance: Instance;
  base: string;
  /** `apply_patch` input of the upstream change's test files (empty when it has none). */
  testPatch: string;
  /** `apply_patch` input of the rest of the upstream change. */
  fixPatch: string;
  /** Paths each patch touches. */
  testFiles: string[];
  fixFiles: string[];
}

/** Reads the base and splits the upstream change; throws when it cannot be replayed. */
export async function prepare(instance: Instance, mirror: string): Promise<Prepared> {
  const base = (await git(mirror, 'rev-parse', `${instance.fix}^1`)).trim();
  const diff = await git(
    mirror,
    'diff',
    '--no-renames',
    '--no-color',
    '--no-ext-diff',
    base,
    instance.fix,
  );
  const files = parseGitDiff(diff);
  const tests = files.filter((f) => isTestPath(pathOf(f)));
  const rest = files.filter((f) => !isTestPath(pathOf(f)));
  if (rest.length === 0) throw new Error(`${instance.id}: the upstream change has no fix part`);
  return {
    instance,
    base,
    testPatch: tests.length === 0 ? '' : toApplyPatch(tests),
    fixPatch: toApplyPatch(rest),
    testFiles: tests.map(pathOf),
    fixFiles: rest.map(pathOf),
  };
}
