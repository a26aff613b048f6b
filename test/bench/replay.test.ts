import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Instance, loadInstances } from '../../bench/replay/instances.js';
import { replay } from '../../bench/replay/run.js';
import { FixtureRepo } from '../support/git-server.js';

/**
 * The replay harness on a small repository of its own (the real instances need fetched clones
 * and run outside CI): a node:test project whose upstream history has a real fix, and one whose
 * "fix" changes nothing that matters, which the harness must report as failing.
 */
const exec = promisify(execFile);
let mirrors: string;
let fix: string;
let notAFix: string;

const CALC_BUGGY = `exports.add = (a, b) => a + b;
exports.clamp = (x, lo, hi) => (x < lo ? lo : x);
`;
const CALC_FIXED = `exports.add = (a, b) => a + b;
exports.clamp = (x, lo, hi) => (x < lo ? lo : x > hi ? hi : x);
`;
const TEST_BASE = `const test = require('node:test');
const assert = require('node:assert');
const { add, clamp } = require('../calc.js');

test('add adds', () => assert.strictEqual(add(2, 3), 5));
test('clamp raises values below lo', () => assert.strictEqual(clamp(-1, 0, 10), 0));
`;
const TEST_FIXED = `${TEST_BASE}test('clamp caps values above hi', () => assert.strictEqual(clamp(11, 0, 10), 10));
`;

beforeAll(async () => {
  mirrors = await mkdtemp(join(tmpdir(), 'patchbay-replay-mirrors-'));
  const upstream = await FixtureRepo.create(join(mirrors, 'work'));
  await upstream.commit({
    'package.json': `${JSON.stringify({ name: 'calc', version: '1.0.0', private: true, scripts: { test: 'node --test' } }, null, 2)}\n`,
    'package-lock.json': `${JSON.stringify({ name: 'calc', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'calc', version: '1.0.0' } } }, null, 2)}\n`,
    'calc.js': CALC_BUGGY,
    'test/calc.test.js': TEST_BASE,
  });
  fix = await upstream.commit(
    { 'calc.js': CALC_FIXED, 'test/calc.test.js': TEST_FIXED },
    'clamp: cap at hi',
  );
  // A change that adds the same test but "fixes" only the README: the test must still fail.
  await upstream.git('checkout', '-q', '-b', 'other', `${fix}~1`);
  notAFix = await upstream.commit(
    { 'README.md': '# calc\n', 'test/calc.test.js': TEST_FIXED },
    'docs only',
  );
  await mkdir(join(mirrors, 'fixture'));
  await exec('git', [
    'clone',
    '-q',
    '--mirror',
    upstream.dir,
    join(mirrors, 'fixture', 'calc.git'),
  ]);
}, 60_000);

afterAll(async () => {
  if (mirrors) await rm(mirrors, { recursive: true, force: true });
});

const instance = (id: string, commit: string): Instance =>
  Instance.parse({
    id,
    repo: 'fixture/calc',
    fix: commit,
    setup: 'npm ci --offline --no-audit --no-fund',
    test: 'node --test',
    failToPass: ['clamp caps values above hi'],
    passToPass: ['add adds', 'clamp raises values below lo'],
    runner: 'node:test',
    packageManager: 'npm',
    made: 'written by this test',
  });

describe('replay harness', () => {
  it('replays a fix through the service: it succeeds with the fix, fails verify without, setup cached', async () => {
    const lines: string[] = [];
    const [good, bad] = await replay({
      instances: [instance('calc-clamp', fix), instance('calc-not-a-fix', notAFix)],
      mirrors,
      progress: (line) => lines.push(line),
    });

    expect(good!.problems).toEqual([]);
    expect(good!.ok).toBe(true);
    expect(good!.withFix).toMatchObject({
      status: 'succeeded',
      verifyPassed: true,
      tests: {
        'clamp caps values above hi': 'passed',
        'add adds': 'passed',
        'clamp raises values below lo': 'passed',
      },
    });
    expect(good!.withoutFix).toMatchObject({
      status: 'failed',
      errorCode: 'verify_failed',
      verifyPassed: false,
      setupCached: true,
      tests: {
        'clamp caps values above hi': 'failed',
        'add adds': 'passed',
        'clamp raises values below lo': 'passed',
      },
    });
    expect(good!.withFix!.setupMs).toEqual(expect.any(Number));
    expect(good!.withFix!.submitToVerdictMs).toBeGreaterThan(0);

    // The README is the whole "fix": with it the new test still fails, and the harness says so.
    expect(bad!.ok).toBe(false);
    expect(bad!.withFix).toMatchObject({ status: 'failed', errorCode: 'verify_failed' });
    expect(bad!.problems[0]).toMatch(/^with the fix: failed verify_failed/);

    expect(lines.some((l) => l.startsWith('[1/2] calc-clamp: with the fix →'))).toBe(true);
    expect(lines.some((l) => l.startsWith('[2/2] calc-not-a-fix: tests only →'))).toBe(true);
  }, 300_000);

  it('reports an instance it cannot replay instead of running it', async () => {
    const [missing] = await replay({
      instances: [{ ...instance('calc-elsewhere', fix), repo: 'nobody/nothing' }],
      mirrors,
    });
    expect(missing).toMatchObject({ ok: false, withFix: null, withoutFix: null });
    expect(missing!.problems[0]).toMatch(/^not replayable: no clone of nobody\/nothing/);
  }, 120_000);

  it('checks the instances file it ships', async () => {
    const shipped = await loadInstances(
      new URL('../../bench/replay/instances.json', import.meta.url).pathname,
    );
    expect(shipped.length).toBeGreaterThan(0);
  });
});
