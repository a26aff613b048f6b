import { fileURLToPath } from 'node:url';

let registered = false;

/**
 * Makes the workspace's TypeScript packages importable. The CLI runs from a bundle of its own code
 * (bin/patchbay.js) with its packages external, and `@patchbay/agent` is TypeScript: tsx's loader
 * goes in only when a command needs such a package (`apply-patch`), so the others start fast. Run
 * from the sources (tsx, vitest), the loader is already there.
 */
export async function loadTypeScriptPackages(): Promise<void> {
  if (registered || import.meta.url.endsWith('.ts')) return;
  const { register } = await import('tsx/esm/api');
  register({ tsconfig: fileURLToPath(new URL('../../../tsconfig.json', import.meta.url)) });
  registered = true;
}
