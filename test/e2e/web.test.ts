import { execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { type ApiServer, startApi } from '@patchbay/api';
import { type Browser, type Locator, type Page, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FINGERPRINT, applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { binaryBytes } from '../support/git-server.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The web page in a real browser (Debian's Chromium, driven by playwright-core) against the
 * real stack: the API serving the built page, a worker, a git server and the scripted model.
 */
const run = promisify(execFile);
const ALICE_KEY = 'alice-key-0123456789abcdef';
const BOB_KEY = 'bob-key-0123456789abcdef00';
const ALICE = { authorization: `Bearer ${ALICE_KEY}` };
const MENTION_SECRET = 'web-mention-secret-7c1d2e';
/** Screenshots of each run, for people to look at; not committed. */
const ARTIFACTS = fileURLToPath(new URL('../../test-results/web/', import.meta.url));

const EDIT = `*** Begin Patch
*** Update File: src/greet.js
@@
-export const greet = (name) => \`Hello, \${name}\`;
+export const greet = (name) => \`Hello, \${name}!\`;
+export const bye = (name) => \`Goodbye, \${name}.\`;
*** Add File: notes.txt
+Greetings now end with an exclamation mark.
*** End Patch`;

let stack: Stack;
let browser: Browser;
let page: Page;
/** Content-Security-Policy violations the browser reported, on any page. */
const violations: string[] = [];

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) =>
        void (await repo.commit({
          'README.md': '# App\n',
          'src/greet.js': 'export const greet = (name) => `Hello, ${name}`;\n',
          'logo.bin': binaryBytes(512),
        })),
    },
    env: {
      PATCHBAY_API_KEYS: `alice:${ALICE_KEY},bob:${BOB_KEY}`,
      PATCHBAY_INTEGRATIONS: JSON.stringify([
        { tenant: 'alice', forge: 'github', secret: MENTION_SECRET, repos: ['acme/app'] },
      ]),
    },
    script: scenarioScript({
      edit: steps(
        [
          shell('ls src'),
          applyPatch(EDIT),
          shell("head -c 300 /dev/urandom > logo.bin && echo 'replaced logo'"),
          shell('sleep 1; cat nope.txt'),
          shell(FINGERPRINT),
        ],
        'Greetings are excited now, and there is a bye.',
      ),
      more: steps([shell('echo more >> notes.txt')], 'Added a line.'),
      slow: steps(
        [
          shell('sleep 2; echo one'),
          shell('sleep 2; echo two'),
          shell('sleep 2; echo three'),
          shell('sleep 2; echo four'),
        ],
        'Slowly done.',
      ),
      sleep: steps([shell('sleep 300', { timeout_ms: 600_000 })]),
      // Codex's own tool: `exec_command` with `cmd`.
      codex: steps(
        [{ name: 'exec_command', arguments: { cmd: "echo 'Written by Codex.' > codex.txt" } }],
        'Codex wrote codex.txt.',
      ),
    }),
  });
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
    ],
  });
  const context = await browser.newContext({
    viewport: { width: 1366, height: 860 },
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  await mkdir(ARTIFACTS, { recursive: true });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.close();
});

async function signIn(key: string): Promise<void> {
  await page.goto(`${stack.url}/`);
  await page.getByLabel('API key').fill(key);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Tasks' }).waitFor();
}

/** Opens a page of the app (`#/…`) signed in with `key`, loaded afresh. */
async function open(hash: string, key = ALICE_KEY): Promise<void> {
  // A page of the origin where the app does not run (it would sign out on its first 401).
  await page.goto(`${stack.url}/healthz`);
  await page.evaluate(`sessionStorage.setItem('patchbay.apiKey', ${JSON.stringify(key)})`);
  await page.goto(`${stack.url}/${hash}`);
  await page.reload();
}

async function submitFromForm(fields: Record<string, string>): Promise<string> {
  await page.getByRole('link', { name: 'New task' }).first().click();
  for (const [label, value] of Object.entries(fields)) await page.getByLabel(label).fill(value);
  await page.getByRole('button', { name: 'Start task' }).click();
  await page.waitForURL(/#\/tasks\//);
  return decodeURIComponent(new URL(page.url()).hash.replace('#/tasks/', ''));
}

const AXE = await readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

/**
 * What axe-core finds against WCAG 2 A and AA (labels, names, contrast, roles) on the page as
 * it is now: rule id and the first offending element of each violation.
 */
async function accessibilityViolations(p: Page): Promise<string[]> {
  // Evaluated through the debugging protocol: the page's CSP does not apply to it.
  return p.evaluate(`(async () => {
    ${AXE}
    const result = await axe.run(document, { runOnly: ['wcag2a', 'wcag2aa'] });
    return result.violations.map((v) => v.id + ': ' + v.nodes[0].html);
  })()`);
}

const statusChip = (p: Page) => p.locator('.task-header .chip').first();
/** How long a page has to show what a test waits for. */
const within = { timeout: 20_000 };
/** A locator's text, read again on each poll ('' while it is not there). */
const textOf = (locator: Locator) => () =>
  locator.textContent({ timeout: 1000 }).then(
    (t) => t ?? '',
    () => '',
  );

describe('the web page', () => {
  it('serves the build at / with a strict CSP and caching that fits each file', async () => {
    const index = await fetch(`${stack.url}/`);
    expect(index.status).toBe(200);
    const csp = index.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).toContain("frame-ancestors 'none'");
    expect(index.headers.get('cache-control')).toBe('no-cache');
    expect(index.headers.get('x-content-type-options')).toBe('nosniff');
    const html = await index.text();
    // Nothing inline for the CSP to refuse: the script and the styles are files.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style="/);
    const script = /src="(\/assets\/[^"]+\.js)"/.exec(html)![1]!;
    const asset = await fetch(`${stack.url}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(asset.headers.get('content-type')).toMatch(/javascript/);
    // Read to the end: a response left unread holds its connection open past the server's close.
    expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(1000);
    // Only the build's files: anything else under / is the API's 404, not the page.
    for (const path of ['/assets/nothing.js', '/../package.json', '/src/main.tsx']) {
      const res = await fetch(`${stack.url}${path}`);
      expect(res.status).toBe(404);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('not_found');
    }
  });

  it('asks for a key, then submits a task, streams its log, shows and downloads its diff', async () => {
    await page.goto(`${stack.url}/`);
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    // A wrong key is refused and the form says so.
    await page.getByLabel('API key').fill('not-a-key-of-anyone-000000');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That key was not accepted.').waitFor();
    await page.getByLabel('API key').fill(ALICE_KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Tasks' }).waitFor();
    expect(await page.evaluate("sessionStorage.getItem('patchbay.apiKey')")).toBe(ALICE_KEY);

    const id = await submitFromForm({
      'Repository URL': stack.git.url('app.git'),
      Prompt: 'SCENARIO:edit make greetings excited',
      Verify: "grep -qF 'Hello, ${name}!' src/greet.js",
    });
    // The log streams in while the task runs: commands with their exit codes, folded output.
    const log = page.getByRole('list', { name: 'Event log' });
    await log.locator('li[data-kind=command]', { hasText: '$ ls src' }).waitFor();
    await expect.poll(() => statusChip(page).textContent(), { timeout: 90_000 }).toBe('succeeded');
    await log.locator('li[data-kind=status]', { hasText: 'succeeded' }).waitFor();

    const failing = log.locator('li[data-kind=command]', { hasText: 'cat nope.txt' });
    await expect.poll(textOf(failing.locator('.chip')), within).toBe('exit 1');
    // A failed command's output is unfolded; a good one's stays folded.
    expect(await failing.locator('details').getAttribute('open')).not.toBeNull();
    const ls = log.locator('li[data-kind=command]', { hasText: '$ ls src' });
    await expect.poll(textOf(ls.locator('.chip')), within).toBe('exit 0');
    expect(await ls.locator('details').getAttribute('open')).toBeNull();
    await expect
      .poll(textOf(log.locator('li[data-kind=edit]')), within)
      .toContain('update src/greet.js');
    await expect
      .poll(textOf(log.locator('li[data-kind=message]').last()), within)
      .toContain('Greetings are excited now');
    const verify = log.locator('li[data-kind=command]', { hasText: 'grep -qF' });
    await expect.poll(textOf(verify.locator('.chip')), within).toBe('exit 0');
    await expect.poll(textOf(page.locator('.verify')), within).toContain('Verify passed');

    // Every event is in the page once: the log's seqs are those of the API's log, folded.
    const events = (await call(stack, 'GET', `/v1/tasks/${id}/events`, undefined, ALICE)).body
      .events as { seq: number; type: string }[];
    expect(Number(await log.getAttribute('data-last-seq'))).toBe(events.at(-1)!.seq);
    const seqs = await log.locator('li').evaluateAll((lis) => lis.map((li) => li.dataset.seq));
    expect(new Set(seqs).size).toBe(seqs.length);
    const shellCalls = events.filter(
      (e) => e.type === 'tool_call' && (e as unknown as { name: string }).name === 'shell',
    ).length;
    const scripts = events.filter((e) => e.type === 'command').length;
    await expect
      .poll(() => log.locator('li[data-kind=command]').count(), within)
      .toBe(shellCalls + scripts);

    // Header: base commit, timings, tokens.
    const task = await waitForTask(stack, id, ALICE);
    await expect
      .poll(textOf(page.locator('.facts')), within)
      .toContain(task.baseCommit.slice(0, 12));
    await expect.poll(textOf(page.locator('.timings')), within).toContain('agent');
    await expect
      .poll(textOf(page.locator('.facts')), within)
      .toContain(`${task.usage.modelCalls} calls`);
    await page.screenshot({ path: join(ARTIFACTS, 'task.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);

    // The diff: every changed file with its counts, the binary one marked.
    await page.getByRole('tab', { name: /Changes/ }).click();
    const files = page.getByRole('list', { name: 'Changed files' });
    await expect.poll(() => files.locator('li').count(), within).toBe(3);
    await expect
      .poll(textOf(files.locator('li', { hasText: 'src/greet.js' })), within)
      .toContain('+2');
    await expect
      .poll(textOf(files.locator('li', { hasText: 'src/greet.js' })), within)
      .toContain('−1');
    await expect
      .poll(textOf(files.locator('li', { hasText: 'logo.bin' })), within)
      .toContain('binary');
    await expect
      .poll(textOf(page.locator('section.diff-file', { hasText: 'notes.txt' })), within)
      .toContain('Greetings now end with an exclamation mark.');
    await expect
      .poll(() => page.locator('.diff-file .line-insert', { hasText: 'Goodbye' }).count(), within)
      .toBe(1);
    await page.getByLabel('Side by side').check();
    await page.locator('table.diff.split').first().waitFor();
    await page.screenshot({ path: join(ARTIFACTS, 'diff.png'), fullPage: true });
    expect(await accessibilityViolations(page)).toEqual([]);

    // Download: the file is the API's patch and applies to the base commit.
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download patch' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`${id}.diff`);
    const dir = await mkdtemp(join(tmpdir(), 'patchbay-web-'));
    try {
      const saved = join(dir, 'task.diff');
      await download.saveAs(saved);
      const fromApi = await fetch(`${stack.url}/v1/tasks/${id}/patch`, { headers: ALICE });
      expect(await readFile(saved, 'utf8')).toBe(await fromApi.text());
      await run('git', ['clone', '-q', stack.git.url('app.git'), join(dir, 'app')]);
      await run('git', ['-C', join(dir, 'app'), 'checkout', '-q', task.baseCommit]);
      await run('git', ['-C', join(dir, 'app'), 'apply', '--binary', saved]);
      expect(await readFile(join(dir, 'app', 'src/greet.js'), 'utf8')).toContain('Goodbye');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    // The copyable command fetches that patch with the key from the environment.
    expect(await page.getByLabel('Command that applies the patch').inputValue()).toBe(
      `curl -fsS -H "Authorization: Bearer $PATCHBAY_API_KEY" '${stack.url}/v1/tasks/${id}/patch' | git apply`,
    );

    // A follow-up from the box: a second turn streams into the same log.
    await page.getByRole('tab', { name: 'Log' }).click();
    await page.getByLabel('Follow-up').fill('SCENARIO:more add a line to the notes');
    await page.getByRole('button', { name: 'Send' }).click();
    await log.locator('li[data-kind=turn]', { hasText: 'Turn 2' }).waitFor();
    await log.locator('li[data-kind=command]', { hasText: 'echo more >> notes.txt' }).waitFor();
    await expect.poll(() => statusChip(page).textContent(), { timeout: 90_000 }).toBe('succeeded');
    await page.getByRole('tab', { name: /Changes/ }).click();
    await expect
      .poll(textOf(page.locator('section.diff-file', { hasText: 'notes.txt' })), within)
      .toContain('more');

    // The list shows it, newest first, with its status.
    await page.getByRole('link', { name: 'Tasks', exact: true }).click();
    const row = page.locator(`tr[data-task="${id}"]`);
    await expect.poll(textOf(row.locator('.chip')), within).toBe('succeeded');
    await expect.poll(textOf(row), within).toContain('2 turns');
    expect(await accessibilityViolations(page)).toEqual([]);
    expect(violations).toEqual([]);
  });

  it('resumes the live log after the connection drops, without repeating an event', async () => {
    const { body: task } = await call(
      stack,
      'POST',
      '/v1/tasks',
      { repo: { url: stack.git.url('app.git') }, prompt: 'SCENARIO:slow take your time' },
      ALICE,
    );
    await open(`#/tasks/${task.id}`);
    const log = page.getByRole('list', { name: 'Event log' });
    await log.locator('li[data-kind=command]', { hasText: 'echo one' }).waitFor();
    await expect.poll(textOf(page.locator('.connection')), within).toBe('live');

    // The API goes away mid-task and comes back on the same port.
    await stack.api.close();
    await expect.poll(textOf(page.locator('.connection')), within).toBe('reconnecting');
    let api: ApiServer | undefined;
    try {
      api = await startApi(stack.config, { keepAliveMs: 500 });
      await expect
        .poll(() => statusChip(page).textContent(), { timeout: 60_000 })
        .toBe('succeeded');
      await log.locator('li[data-kind=status]', { hasText: 'succeeded' }).waitFor();
      const events = (await call(stack, 'GET', `/v1/tasks/${task.id}/events`, undefined, ALICE))
        .body.events as { seq: number }[];
      await expect
        .poll(async () => Number(await log.getAttribute('data-last-seq')))
        .toBe(events.at(-1)!.seq);
      const seqs = await log.locator('li').evaluateAll((lis) => lis.map((li) => li.dataset.seq));
      expect(new Set(seqs).size).toBe(seqs.length);
      for (const word of ['one', 'two', 'three', 'four'])
        await expect
          .poll(
            () => log.locator('li[data-kind=command]', { hasText: `echo ${word}` }).count(),
            within,
          )
          .toBe(1);
    } finally {
      // The stack closes its own API at the end: hand it the new one.
      if (api) stack.api = api;
    }
  });

  it('cancels a running task from its page', async () => {
    const { body: task } = await call(
      stack,
      'POST',
      '/v1/tasks',
      { repo: { url: stack.git.url('app.git') }, prompt: 'SCENARIO:sleep wait' },
      ALICE,
    );
    await open(`#/tasks/${task.id}`);
    const log = page.getByRole('list', { name: 'Event log' });
    await log.locator('li[data-kind=command]', { hasText: 'sleep 300' }).waitFor();
    await expect
      .poll(textOf(log.locator('li[data-kind=command]', { hasText: 'sleep 300' })), within)
      .toContain('running');
    await page.getByRole('button', { name: 'Cancel task' }).click();
    await expect.poll(() => statusChip(page).textContent(), { timeout: 60_000 }).toBe('cancelled');
    expect((await waitForTask(stack, task.id, ALICE)).status).toBe('cancelled');
    await expect
      .poll(() => page.getByRole('button', { name: 'Cancel task' }).count(), within)
      .toBe(0);
  });

  it('offers the agent runtimes the server offers and runs a codex task chosen on the form', async () => {
    await open('#/new');
    const agent = page.getByLabel('Agent');
    // The options are the server's (`GET /v1/runtimes`), its default chosen.
    await expect
      .poll(() => agent.locator('option').allTextContents(), within)
      .toEqual(['patchbay (default)', 'codex']);
    expect(await agent.inputValue()).toBe('patchbay');
    await agent.selectOption('codex');
    await expect
      .poll(textOf(page.locator('#field-runtime-hint')), within)
      .toContain('Codex CLI inside the sandbox');
    await page.getByLabel('Repository URL').fill(stack.git.url('app.git'));
    await page.getByLabel('Prompt').fill('SCENARIO:codex leave a note');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.waitForURL(/#\/tasks\//);
    const id = decodeURIComponent(new URL(page.url()).hash.replace('#/tasks/', ''));

    await expect.poll(() => statusChip(page).textContent(), { timeout: 180_000 }).toBe('succeeded');
    const task = await waitForTask(stack, id, ALICE);
    expect(task.agent).toEqual({ runtime: 'codex' });
    // The page says it is the page: the task records where it came from.
    expect(task.origin).toEqual({ kind: 'page' });
    expect(await page.locator('dl.facts').textContent()).toContain('Fromthis page');
    // Codex's command is in the page's log, and its file in the diff.
    const log = page.getByRole('list', { name: 'Event log' });
    await log.locator('li[data-kind=command]', { hasText: 'codex.txt' }).waitFor(within);
    const patch = await call(stack, 'GET', `/v1/tasks/${id}/patch`, undefined, ALICE);
    expect(patch.body).toContain('+Written by Codex.');
  }, 240_000);

  it("shows the API's refusals next to the field they concern", async () => {
    await open('#/new');
    await page.getByLabel('Repository URL').fill('http://10.0.0.1/secret.git');
    await page.getByLabel('Prompt').fill('anything');
    await page.getByRole('button', { name: 'Start task' }).click();
    const urlError = page.locator('.field-error[data-field=url]');
    await expect.poll(textOf(urlError), within).toMatch(/private|not allowed|refused/i);
    expect(await page.getByLabel('Repository URL').getAttribute('aria-invalid')).toBe('true');
    await expect
      .poll(() => page.locator('.field-error[data-field=prompt]').count(), within)
      .toBe(0);

    // A schema refusal points at its field too.
    await page.getByLabel('Repository URL').fill(stack.git.url('app.git'));
    await page.getByLabel('Prompt').fill('   ');
    await page.getByRole('button', { name: 'Start task' }).click();
    await expect
      .poll(textOf(page.locator('.field-error[data-field=prompt]')), within)
      .toContain('blank');
    await expect.poll(() => page.locator('.field-error[data-field=url]').count(), within).toBe(0);
    await page.getByLabel('Attempts').fill('99');
    await page.getByLabel('Prompt').fill('fine');
    await page.getByRole('button', { name: 'Start task' }).click();
    await page.locator('.field-error[data-field=attempts]').waitFor();
    // The form with its errors shown: every field labelled, errors tied to their fields.
    expect(await accessibilityViolations(page)).toEqual([]);
    expect(page.url()).toContain('#/new');
  });

  it("compares a task's attempts and lets the user choose another", async () => {
    const { body: task } = await call(
      stack,
      'POST',
      '/v1/tasks',
      {
        repo: { url: stack.git.url('app.git') },
        prompt: 'SCENARIO:more two ways',
        attempts: 2,
      },
      ALICE,
    );
    await waitForTask(stack, task.id, ALICE);
    await open(`#/tasks/${task.id}`);
    // The tabs answer the arrow keys.
    await page.getByRole('tab', { name: 'Log' }).focus();
    await page.keyboard.press('ArrowRight');
    expect(await page.getByRole('tab', { name: /Changes/ }).getAttribute('aria-selected')).toBe(
      'true',
    );
    await page.keyboard.press('ArrowRight');
    expect(
      await page.getByRole('tab', { name: 'Attempts (2)' }).getAttribute('aria-selected'),
    ).toBe('true');
    expect(await page.evaluate('document.activeElement.id')).toBe('tab-attempts');
    const rows = page.locator('table.attempts tbody tr');
    await expect.poll(() => rows.count(), within).toBe(2);
    await expect.poll(() => rows.locator('.tag', { hasText: 'chosen' }).count(), within).toBe(1);
    const other = rows.filter({ hasNot: page.locator('.tag', { hasText: 'chosen' }) });
    const n = Number(await other.getAttribute('data-attempt'));
    await other.getByRole('button', { name: 'Diff' }).click();
    await expect
      .poll(textOf(page.getByRole('region', { name: `Diff of attempt ${n}` })), within)
      .toContain('notes.txt');
    await other.getByRole('button', { name: 'Use this one' }).click();
    await expect.poll(textOf(page.locator(`tr[data-attempt="${n}"] .tag`)), within).toBe('chosen');
    await page.getByText(/overruled: the rule chose/).waitFor();
  });

  it('lists, adds, pauses, resumes and deletes schedules, with refusals next to their field', async () => {
    await open('#/schedules');
    await page.getByRole('heading', { name: 'Schedules' }).waitFor();
    await page.getByText('No schedules yet.').waitFor();
    await page.getByLabel('Repository URL').fill(stack.git.url('app.git'));
    await page.getByLabel('Prompt').fill('Nightly notes. SCENARIO:more');
    await page.getByLabel('Cron').fill('every night');
    await page.getByRole('button', { name: 'Add schedule' }).click();
    await expect
      .poll(textOf(page.locator('.field-error[data-field=cron]')), within)
      .toMatch(/cron|pattern/i);
    expect(await page.getByLabel('Cron').getAttribute('aria-invalid')).toBe('true');
    expect(await accessibilityViolations(page)).toEqual([]);

    await page.getByLabel('Cron').fill('0 3 * * *');
    await page.getByLabel('Time zone').fill('Europe/Paris');
    await page.getByRole('button', { name: 'Add schedule' }).click();
    const row = page.locator('tr[data-schedule]');
    await expect.poll(textOf(row), within).toContain('0 3 * * * (Europe/Paris)');
    const { body } = await call(stack, 'GET', '/v1/schedules', undefined, ALICE);
    expect(body.schedules).toHaveLength(1);
    const schedule = body.schedules[0];
    expect(schedule).toMatchObject({ cron: '0 3 * * *', timezone: 'Europe/Paris', paused: false });
    expect(schedule.spec.prompt).toBe('Nightly notes. SCENARIO:more');
    // Its next run is shown (in the browser's own format): at 3 o'clock, in its year.
    expect(await textOf(row.locator('td').nth(2))()).toContain(schedule.nextRunAt.slice(0, 4));

    await row.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(textOf(row), within).toContain('paused');
    expect(
      (await call(stack, 'GET', `/v1/schedules/${schedule.id}`, undefined, ALICE)).body.paused,
    ).toBe(true);
    await row.getByRole('button', { name: 'Resume' }).click();
    await row.getByRole('button', { name: 'Pause' }).waitFor();
    expect(
      (await call(stack, 'GET', `/v1/schedules/${schedule.id}`, undefined, ALICE)).body.paused,
    ).toBe(false);
    await row.locator('summary').click();
    await row.getByText('It has not fired yet.').waitFor();

    page.once('dialog', (dialog) => void dialog.accept());
    await row.getByRole('button', { name: 'Delete' }).click();
    await page.getByText('No schedules yet.').waitFor();
    expect((await call(stack, 'GET', '/v1/schedules', undefined, ALICE)).body.schedules).toEqual(
      [],
    );
  });

  it('links a task a forge mention started back to the comment', async () => {
    const comment = 'https://github.example/acme/app/issues/3#issuecomment-1';
    const payload = JSON.stringify({
      action: 'created',
      issue: {
        number: 3,
        title: 'Notes',
        body: null,
        html_url: 'https://github.example/acme/app/issues/3',
        updated_at: new Date().toISOString(),
      },
      comment: {
        body: '@patchbay more notes SCENARIO:more',
        html_url: comment,
        created_at: new Date().toISOString(),
        author_association: 'OWNER',
        user: { login: 'octodev', type: 'User' },
      },
      repository: { full_name: 'acme/app', clone_url: stack.git.url('app.git') },
    });
    const res = await fetch(`${stack.url}/v1/integrations/github/events`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'x-github-event': 'issue_comment',
        'x-github-delivery': 'web-delivery-1',
        'x-hub-signature-256': `sha256=${createHmac('sha256', MENTION_SECRET).update(payload).digest('hex')}`,
      },
      body: payload,
    });
    expect(res.status).toBe(202);
    const { taskId } = (await res.json()) as { taskId: string };
    await open(`#/tasks/${taskId}`);
    const link = page.locator('dl.facts a.origin');
    await expect.poll(textOf(link), within).toBe('a mention by @octodev on GitHub, acme/app #3');
    expect(await link.getAttribute('href')).toBe(comment);
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
  });

  it("does not open another tenant's task", async () => {
    const { body: list } = await call(stack, 'GET', '/v1/tasks?limit=1', undefined, ALICE);
    const id = list.tasks[0].id as string;
    await page.getByRole('button', { name: 'Sign out' }).click();
    await signIn(BOB_KEY);
    await page.goto(`${stack.url}/#/tasks/${id}`);
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    await expect.poll(textOf(page.locator('main')), within).toContain(`There is no task ${id}`);
    await expect.poll(() => page.locator('.task-header').count(), within).toBe(0);
    // Bob's own list is empty: nothing of Alice's shows there either.
    await page.getByRole('link', { name: 'Tasks', exact: true }).click();
    await page.getByText('No tasks yet.').waitFor();
    expect(violations).toEqual([]);
  });
});

/** Where the README's screenshot comes from: `PATCHBAY_UPDATE_SCREENSHOT=1 npm test -- web`. */
afterAll(async () => {
  if (process.env.PATCHBAY_UPDATE_SCREENSHOT !== '1') return;
  const docs = fileURLToPath(new URL('../../docs/', import.meta.url));
  await writeFile(join(docs, 'web-task.png'), await readFile(join(ARTIFACTS, 'task.png')));
});
