#!/usr/bin/env node
// Starts the TypeScript CLI with no build step to run by hand. Fast path: a bundle of the CLI's
// own code (its packages stay external), made by esbuild on first use and remade whenever a source
// file is newer; starting from it skips tsx's loader, most of a second on a slow machine. When the
// bundle cannot be written (a read-only install), the sources run through tsx's loader instead.
import { mkdirSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import process from 'node:process';
import { URL, fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const bundle = join(root, 'dist', 'patchbay.mjs');

/** Newest modification time of the CLI's sources (tests aside) and its package.json. */
function newestSource(dir = join(root, 'src')) {
  let newest = statSync(join(root, 'package.json')).mtimeMs;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts'))
      newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

async function freshBundle() {
  const made = statSync(bundle, { throwIfNoEntry: false })?.mtimeMs ?? 0;
  if (made >= newestSource()) return true;
  try {
    const { build } = await import('esbuild');
    const result = await build({
      entryPoints: [join(root, 'src', 'main.ts')],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      write: false,
      logLevel: 'silent',
    });
    // Written aside and renamed: a second CLI starting meanwhile sees the old file or the new.
    mkdirSync(join(root, 'dist'), { recursive: true });
    const temp = `${bundle}.${process.pid}.tmp`;
    writeFileSync(temp, result.outputFiles[0].contents);
    renameSync(temp, bundle);
    return true;
  } catch {
    return false;
  }
}

if (await freshBundle()) {
  await import(pathToFileURL(bundle).href);
} else {
  const { register } = await import('tsx/esm/api');
  // The repository's tsconfig, named explicitly: tsx would otherwise read one from the working
  // directory, which is whatever directory the user is patching.
  register({ tsconfig: join(root, '..', '..', 'tsconfig.json') });
  await import('../src/main.ts');
}
