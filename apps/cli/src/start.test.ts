import { execFile } from 'node:child_process';
import { readFile, stat, utimes } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const run = promisify(execFile);
const bin = fileURLToPath(new URL('../bin/patchbay.js', import.meta.url));
const bundle = fileURLToPath(new URL('../dist/patchbay.mjs', import.meta.url));
const source = fileURLToPath(new URL('./render.ts', import.meta.url));

describe('the patchbay command starts', () => {
  it('from a bundle of its own code that leaves the agent package to apply-patch', async () => {
    const help = await run(process.execPath, [bin, '--help']);
    expect(help.stdout).toContain('Usage: patchbay');
    const code = await readFile(bundle, 'utf8');
    // Statically imported, the agent package (and the openai SDK) would load for every command.
    expect(code).not.toMatch(/^import .* from "@patchbay\/agent";$/m);
    expect(code).toContain('import("@patchbay/agent")');
    expect(code).not.toMatch(/from "(openai|zod|tsx[^"]*)"/);
  });

  it('remakes the bundle when a source file is newer', async () => {
    await run(process.execPath, [bin, '--version']);
    const before = (await stat(bundle)).mtimeMs;
    const now = new Date(Math.max(Date.now(), before + 2000));
    await utimes(source, now, now);
    const version = await run(process.execPath, [bin, '--version']);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect((await stat(bundle)).mtimeMs).toBeGreaterThan(before);
  });
});
