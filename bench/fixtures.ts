/** Repositories and scripted scenarios the task benchmarks share. */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScriptedCall } from '@patchbay/agent/testing';
import type { RepoBuilder } from '../test/support/git-server.js';
import { applyPatch, shell } from '../test/support/scenarios.js';

/**
 * `files` text files of `bytes` each (hex of random bytes, so git cannot compress them away) in
 * 50 directories, plus the three files the scripted patch edits; one commit. Written straight to
 * disk and added in one `git add`, not file by file.
 */
export function bigRepo(files: number, bytes: number): RepoBuilder {
  return async (repo) => {
    for (let d = 0; d < 50; d++) await mkdir(join(repo.dir, 'src', `d${d}`), { recursive: true });
    for (let i = 0; i < files; i++) {
      const hex = randomBytes(Math.ceil(bytes / 2)).toString('hex');
      const lines = hex.match(/.{1,80}/g)!.join('\n');
      await writeFile(join(repo.dir, 'src', `d${i % 50}`, `f${i}.txt`), `${lines}\n`);
    }
    await writeFile(join(repo.dir, 'a.txt'), 'alpha\n');
    await writeFile(join(repo.dir, 'b.txt'), 'beta\n');
    await writeFile(join(repo.dir, 'c.txt'), 'gamma\n');
    await repo.git('add', '-A');
    await repo.git('commit', '-q', '-m', 'bench fixture');
  };
}

/** A patch that edits the three files `bigRepo` adds. */
const THREE_FILE_PATCH = `*** Begin Patch
*** Update File: a.txt
@@
-alpha
+alpha, edited
*** Update File: b.txt
@@
-beta
+beta, edited
*** Update File: c.txt
@@
-gamma
+gamma, edited
*** End Patch`;

/** `calls` tool calls in all: `calls - 1` no-op shells, then the three-file patch. */
export function workCalls(calls: number): ScriptedCall[] {
  return [...Array.from({ length: calls - 1 }, () => shell('true')), applyPatch(THREE_FILE_PATCH)];
}
