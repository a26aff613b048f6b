/**
 * Replays instances through the whole service: the repositories served on 127.0.0.1, the API and
 * a worker, and a scripted "oracle" model that applies the upstream change with the agent's own
 * `apply_patch`. Each instance runs twice, each a task through the public API with the instance's
 * setup and its tests as verify: with the fix (must succeed, verify passing), then with the test
 * files only (must end `verify_failed`, its setup from the cache the first run left).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScriptedCall } from '@patchbay/agent/testing';
import { applyPatch, scenarioScript, steps } from '../../test/support/scenarios.js';
import { type Stack, call, startStack } from '../../test/support/stack.js';
import { type Instance, type Prepared, git, mirrorOf, prepare } from './instances.js';
import { type TestState, testState } from './outcomes.js';

export interface ReplayOptions {
  instances: readonly Instance[];
  /** Where the repositories' clones are (see {@link mirrorOf}). */
  mirrors: string;
  /** More environment for the stack (limits, a worker's concurrency). */
  env?: Record<string, string>;
  /** Most time one task may take from submit to its end. @default 30 min */
  taskTimeoutMs?: number;
  /** A line per step, as it happens. */
  progress?: (line: string) => void;
  /** A directory to keep each task's verify output in (`<id>-fix.txt`, `<id>-tests.txt`). */
  outputs?: string;
}

/** One task of an instance, as it ended. */
export interface RunResult {
  taskId: string;
  status: string;
  errorCode: string | null;
  /** What the task's error said (setup's output tail, say). */
  errorMessage: string | null;
  verifyPassed: boolean | null;
  verifyExitCode: number | null;
  setupMs: number | null;
  setupCached: boolean | null;
  /** From the POST being sent to the task's end seen by the client. */
  submitToVerdictMs: number;
  /** What verify's output says of each FAIL_TO_PASS and PASS_TO_PASS test. */
  tests: Record<string, TestState>;
}

export interface InstanceResult {
  id: string;
  repo: string;
  runner: string;
  packageManager: string;
  /** Every expectation held: the fix succeeds, the tests alone fail verify, setup was cached. */
  ok: boolean;
  /** What did not hold, in words (empty when ok). */
  problems: string[];
  withFix: RunResult | null;
  withoutFix: RunResult | null;
}

/** The name a repository is served under on the local git server. */
const served = (repo: string): string => `${repo.replace('/', '-')}.git`;

/** How long a status poll waits between reads. */
const POLL_MS = 100;

export async function replay(options: ReplayOptions): Promise<InstanceResult[]> {
  const say = options.progress ?? (() => undefined);
  const prepared: Prepared[] = [];
  const results = new Map<string, InstanceResult>();
  for (const instance of options.instances) {
    try {
      prepared.push(await prepare(instance, await mirrorOf(options.mirrors, instance.repo)));
    } catch (err) {
      results.set(instance.id, failed(instance, `not replayable: ${(err as Error).message}`));
      say(`${instance.id}: not replayable: ${(err as Error).message}`);
    }
  }

  const repos = [...new Set(prepared.map((p) => p.instance.repo))];
  const scenarios: Record<string, ReturnType<typeof steps>> = {};
  for (const p of prepared) {
    const tests: ScriptedCall[] = p.testPatch === '' ? [] : [applyPatch(p.testPatch)];
    scenarios[`${p.instance.id}-fix`] = steps([...tests, applyPatch(p.fixPatch)], 'Applied.');
    scenarios[`${p.instance.id}-tests`] = steps(tests, 'Applied the tests only.');
  }
  const stack = await startStack({
    repos: Object.fromEntries(
      await Promise.all(
        repos.map(async (repo) => {
          const mirror = await mirrorOf(options.mirrors, repo);
          const bases = prepared.filter((p) => p.instance.repo === repo);
          return [
            served(repo),
            async (fixture: { dir: string }) => {
              // Each instance's base as a branch of its own; history comes along, no work tree.
              await git(
                fixture.dir,
                'fetch',
                '-q',
                '--no-tags',
                mirror,
                ...bases.map((p) => `${p.base}:refs/heads/replay/${p.instance.id}`),
              );
            },
          ] as const;
        }),
      ),
    ),
    script: scenarioScript(scenarios),
    env: {
      // Real projects' dependencies: node_modules in the workspace, package managers' caches in
      // the home (yarn keeps every tarball it fetched there); tmpfs counts against memory.
      PATCHBAY_SANDBOX_MEMORY: '6g',
      PATCHBAY_SANDBOX_WORKSPACE_SIZE: '3g',
      PATCHBAY_SANDBOX_HOME_SIZE: '2g',
      PATCHBAY_TASK_TIMEOUT_SECONDS: '1800',
      PATCHBAY_ENV_CACHE_BYTES: '20g',
      ...options.env,
    },
  });
  try {
    for (const [i, p] of prepared.entries()) {
      const { instance } = p;
      const at = `[${i + 1}/${prepared.length}] ${instance.id}`;
      say(`${at}: with the fix (${p.fixFiles.length} files, ${p.testFiles.length} test files)`);
      const withFix = await runOne(stack, p, 'fix', options);
      say(`${at}: with the fix → ${describe(withFix)}`);
      say(`${at}: tests only`);
      const withoutFix = await runOne(stack, p, 'tests', options);
      say(`${at}: tests only → ${describe(withoutFix)}`);
      results.set(instance.id, judge(instance, withFix, withoutFix));
    }
  } finally {
    await stack.close();
  }
  return options.instances.map((i) => results.get(i.id)!);
}

async function runOne(
  stack: Stack,
  p: Prepared,
  kind: 'fix' | 'tests',
  options: ReplayOptions,
): Promise<RunResult> {
  const { instance } = p;
  const timeoutMs = options.taskTimeoutMs ?? 30 * 60_000;
  const started = performance.now();
  const submitted = await call(stack, 'POST', '/v1/tasks', {
    repo: {
      url: stack.git.url(served(instance.repo)),
      ref: `replay/${instance.id}`,
    },
    prompt: `Replay ${instance.id} (${kind === 'fix' ? 'the upstream fix' : 'its tests only'}). SCENARIO:${instance.id}-${kind}`,
    environment: { setup: instance.setup, verify: instance.test },
  });
  if (submitted.status !== 202)
    throw new Error(
      `${instance.id}: submit answered ${submitted.status}: ${JSON.stringify(submitted.body)}`,
    );
  const id: string = submitted.body.id;
  let task: any;
  for (;;) {
    task = (await call(stack, 'GET', `/v1/tasks/${id}`)).body;
    if (['succeeded', 'failed', 'cancelled'].includes(task?.status)) break;
    if (performance.now() - started > timeoutMs) {
      await call(stack, 'POST', `/v1/tasks/${id}/cancel`);
      throw new Error(`${instance.id}: task ${id} still ${task?.status} after ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const submitToVerdictMs = performance.now() - started;
  const output = await verifyOutput(stack, id);
  if (options.outputs !== undefined) {
    await mkdir(options.outputs, { recursive: true });
    await writeFile(join(options.outputs, `${instance.id}-${kind}.txt`), output);
  }
  return {
    taskId: id,
    status: task.status,
    errorCode: task.error?.code ?? null,
    errorMessage: task.error?.message ?? null,
    verifyPassed: task.result?.verify?.passed ?? null,
    verifyExitCode: task.result?.verify?.exitCode ?? null,
    setupMs: task.timings?.setupMs ?? null,
    setupCached: task.timings?.setupCached ?? null,
    submitToVerdictMs,
    tests: Object.fromEntries(
      [...instance.failToPass, ...instance.passToPass].map((name) => [
        name,
        testState(output, name),
      ]),
    ),
  };
}

/** Everything the verify phase printed, from the task's event log. */
async function verifyOutput(stack: Stack, id: string): Promise<string> {
  let after = 0;
  let text = '';
  for (;;) {
    const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?after=${after}&limit=1000`);
    const events: any[] = body.events ?? [];
    for (const e of events) {
      if (e.type === 'output' && e.phase === 'verify') text += e.text;
    }
    if (events.length < 1000) return text;
    after = events.at(-1).seq;
  }
}

function judge(instance: Instance, withFix: RunResult, withoutFix: RunResult): InstanceResult {
  const problems: string[] = [];
  if (withFix.status !== 'succeeded' || withFix.verifyPassed !== true)
    problems.push(
      `with the fix: ${describe(withFix)}, not succeeded with verify passing${withFix.errorMessage && withFix.errorCode !== 'verify_failed' ? ` (${withFix.errorMessage.slice(-300)})` : ''}`,
    );
  if (withoutFix.status !== 'failed' || withoutFix.errorCode !== 'verify_failed')
    problems.push(`tests only: ${describe(withoutFix)}, not verify_failed`);
  if (withoutFix.setupCached !== true)
    problems.push('tests only: setup did not come from the cache');
  const wrong = (run: RunResult, names: readonly string[], want: TestState): string[] =>
    names.filter((name) => run.tests[name] !== want).map((name) => `${name} (${run.tests[name]})`);
  const expect = (what: string, run: RunResult, names: readonly string[], want: TestState) => {
    const off = wrong(run, names, want);
    if (off.length > 0) problems.push(`${what}, verify does not show ${want}: ${off.join(', ')}`);
  };
  expect('with the fix', withFix, [...instance.failToPass, ...instance.passToPass], 'passed');
  expect('tests only', withoutFix, instance.failToPass, 'failed');
  expect('tests only', withoutFix, instance.passToPass, 'passed');
  return {
    id: instance.id,
    repo: instance.repo,
    runner: instance.runner,
    packageManager: instance.packageManager,
    ok: problems.length === 0,
    problems,
    withFix,
    withoutFix,
  };
}

function failed(instance: Instance, problem: string): InstanceResult {
  return {
    id: instance.id,
    repo: instance.repo,
    runner: instance.runner,
    packageManager: instance.packageManager,
    ok: false,
    problems: [problem],
    withFix: null,
    withoutFix: null,
  };
}

function describe(r: RunResult): string {
  const verify =
    r.verifyPassed === null
      ? 'no verify'
      : `verify ${r.verifyPassed ? 'passed' : `exit ${r.verifyExitCode}`}`;
  const setup =
    r.setupMs === null
      ? ''
      : `, setup ${(r.setupMs / 1000).toFixed(1)} s${r.setupCached ? ' (cached)' : ''}`;
  return `${r.status}${r.errorCode ? ` ${r.errorCode}` : ''}, ${verify}${setup}, ${(r.submitToVerdictMs / 1000).toFixed(1)} s`;
}
