import { isPatchbayError } from '@patchbay/core';
import { collectPatch } from '@patchbay/pipeline';
import type { Sandbox } from '@patchbay/sandbox';
import { TEST_IMAGE, removeNamespace, testProvider } from '@patchbay/sandbox/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `collectPatch` on a sandbox the agent left beyond saving: when neither the workspace nor a
 * restored copy can give the base commit, the collection fails with a precise code and reason
 * rather than a patch made against the wrong base (the e2e suite covers the states it survives).
 */
const provider = testProvider();
let sandbox: Sandbox;
let base = '';
const signal = new AbortController().signal;

beforeAll(async () => {
  sandbox = await provider.create({ image: TEST_IMAGE, taskId: 'collect-test' });
  const made = await sandbox.exec(
    'git init -q . && echo one > a.txt && git add a.txt && git commit -qm base && git rev-parse HEAD',
  );
  base = made.output.toString().trim().split('\n').at(-1)!;
  expect(base).toMatch(/^[0-9a-f]{40}$/);
});

afterAll(async () => {
  await provider.close();
  await removeNamespace(provider.options.namespace);
});

describe('collecting from a sandbox whose .git lost the base', () => {
  it('collects the change while the base is readable', async () => {
    await sandbox.exec('echo two >> a.txt');
    const collected = await collectPatch(sandbox, base, { maxBytes: 1 << 20, signal });
    expect(collected.files).toEqual([
      { path: 'a.txt', status: 'modified', additions: 1, deletions: 0 },
    ]);
  });

  it('fails with sandbox_error and reason base_unreadable, with no restorer or a restorer that cannot help', async () => {
    await sandbox.exec('rm -rf .git/objects');
    const none: unknown = await collectPatch(sandbox, base, { maxBytes: 1 << 20, signal }).catch(
      (err: unknown) => err,
    );
    expect(isPatchbayError(none, 'sandbox_error')).toBe(true);
    if (!isPatchbayError(none)) throw none;
    expect(none.details).toMatchObject({ reason: 'base_unreadable' });
    expect(none.message).toMatch(/the base commit could not be read/);

    let restored = 0;
    const useless: unknown = await collectPatch(sandbox, base, {
      maxBytes: 1 << 20,
      signal,
      // Puts something there, but not the base.
      restoreBase: async (target, path) => {
        restored++;
        await target.exec(['mkdir', '-p', `${path}/.git/objects`]);
      },
    }).catch((err: unknown) => err);
    expect(restored).toBe(1);
    expect(isPatchbayError(useless) && useless.details).toMatchObject({
      reason: 'base_unreadable',
    });
  });
});
