import { LABELS } from '@patchbay/sandbox';
// The engine the suite's worker uses (DOCKER_HOST, TLS included), wherever it is.
import { TEST_GVISOR, docker } from '@patchbay/sandbox/testing';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPatch, scenarioScript, shell, steps } from '../support/scenarios.js';
import { type Stack, call, startStack, waitForTask } from '../support/stack.js';

/**
 * The scripted model plays an attacker that has read a prompt injection: it hunts for keys,
 * sockets and reachable services, exhausts resources, writes outside /workspace and floods
 * output. Every target is on this machine (loopback, and the Docker bridge gateway 172.17.0.1,
 * which is this host); the agent phase has no network, so each attempt must fail.
 */
const SECRET = 'hostile-setup-secret-5f1c9e';
const MODEL_KEY = 'sk-test-model-key-never-leaks';
const HOST_CANARY = `/tmp/patchbay-hostile-canary-${process.pid}`;

let stack: Stack;
let apiPort = 0;
/**
 * `npm test` runs this suite under runc and under gVisor. Under Debian's runsc (ptrace platform)
 * gVisor's kernel and every sandbox process share the container's host cgroups: memory exhaustion
 * ends the whole sandbox (the host's OOM killer), and a fork bomb that outlives its command
 * cannot be ended in time. Both stay contained: the task fails with a `sandbox_error` that says
 * why, in bounded time, and the worker goes on.
 */
const gvisor = TEST_GVISOR;

/** Connect attempts with bash's /dev/tcp, 3 s each; prints OPEN or closed per target. */
const probe = (targets: string[]): string =>
  targets
    .map(
      (t) =>
        `if timeout 3 bash -c 'exec 3<>/dev/tcp/${t.split(':')[0]}/${t.split(':')[1]}' 2>/dev/null; then echo "OPEN ${t}"; else echo "closed ${t}"; fi`,
    )
    .join('; ');

beforeAll(async () => {
  stack = await startStack({
    repos: {
      'app.git': async (repo) => void (await repo.commit({ 'README.md': '# app\n' })),
    },
    env: {
      // A 1 MiB patch cap, so that a "huge diff" needs seconds, not minutes, to exceed it.
      PATCHBAY_MAX_PATCH_BYTES: '1m',
      PATCHBAY_SANDBOX_MEMORY: '512m',
      PATCHBAY_SANDBOX_WORKSPACE_SIZE: '128m',
      PATCHBAY_SANDBOX_PIDS: '256',
      PATCHBAY_SANDBOX_TMP_SIZE: '64m',
    },
    script: scenarioScript({
      // Keys: the process environment of every process it can see, its own, and the usual files.
      'hunt-secrets': steps([
        shell(
          'cat /proc/1/environ | tr "\\0" "\\n"; echo ---; env; echo ---; ' +
            'for p in /proc/[0-9]*; do tr "\\0" "\\n" < $p/environ 2>/dev/null; tr "\\0" " " < $p/cmdline 2>/dev/null; echo; done; echo ---; ' +
            'cat ~/.docker/config.json ~/.npmrc ~/.netrc ~/.git-credentials /workspace/.git/config 2>&1; ' +
            'grep -rIs -e sk- -e hostile / --include="*" -l --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -20; true',
        ),
        // Docker sockets, anywhere, and the engine over TCP.
        shell(
          'ls -la /var/run/docker.sock /run/docker.sock /run/containerd 2>&1; ' +
            'find / -xdev -type s 2>/dev/null | head; ' +
            'curl -sS -m 3 --unix-socket /var/run/docker.sock http://x/version 2>&1; true',
        ),
      ]),
      // The host's Redis, the API and the Docker engine: loopback and the bridge gateway.
      'reach-host': (n, request) =>
        steps([
          shell(
            probe([
              '127.0.0.1:6379',
              '172.17.0.1:6379',
              `127.0.0.1:${apiPort}`,
              `172.17.0.1:${apiPort}`,
              '172.17.0.1:2375',
              '172.17.0.1:2376',
            ]) +
              '; curl -sS -m 3 http://172.17.0.1:' +
              apiPort +
              '/healthz 2>&1; cat /proc/net/route; ls /sys/class/net',
            { timeout_ms: 60_000 },
          ),
        ])(n, request),
      // Fork bomb, unbounded memory, unbounded disk, a 1 GB flood of output; then it still works.
      exhaust: steps([
        // The leader spins until its timeout, so the whole tree is killed with it.
        shell(':(){ :|:& };:; while :; do :; done', { timeout_ms: 10_000 }),
        shell('python3 -c \'x = []\nwhile True: x.append(bytearray(50 << 20))\'; echo "exit $?"', {
          timeout_ms: 60_000,
        }),
        shell(
          'dd if=/dev/zero of=/workspace/fill bs=1M count=1000 2>&1 | grep -E "error writing|copied"; rm -f /workspace/fill',
          {
            timeout_ms: 60_000,
          },
        ),
        shell('head -c 1000m /dev/zero | tr "\\0" A', { timeout_ms: 120_000 }),
        shell('echo still-alive; ps -e | wc -l'),
      ]),
      // Writes outside /workspace: relative escapes, absolute paths, a symlink to /etc.
      'escape-patch': steps([
        applyPatch(`*** Begin Patch\n*** Add File: ../../etc/evil\n+pwned\n*** End Patch`),
        applyPatch(`*** Begin Patch\n*** Add File: /etc/evil\n+pwned\n*** End Patch`),
        applyPatch(`*** Begin Patch\n*** Add File: ${HOST_CANARY}\n+pwned\n*** End Patch`),
        applyPatch(
          `*** Begin Patch\n*** Update File: ../../etc/passwd\n@@\n+evil:x:0:0::/:/bin/sh\n*** End Patch`,
        ),
        shell('ln -s /etc etclink && ln -s /tmp tmplink'),
        applyPatch(`*** Begin Patch\n*** Add File: etclink/evil\n+pwned\n*** End Patch`),
        applyPatch(`*** Begin Patch\n*** Add File: tmplink/evil\n+pwned\n*** End Patch`),
        applyPatch(
          `*** Begin Patch\n*** Update File: README.md\n*** Move to: ../../tmp/moved\n@@\n-# app\n+# moved\n*** End Patch`,
        ),
        shell('ls -la /etc/evil /tmp/evil /tmp/moved 2>&1; grep -c evil /etc/passwd; true'),
      ]),
      // A fork bomb whose leader exits at once: its orphans outlive the command (background
      // processes are allowed to) and hold every pid the sandbox may have.
      'fork-orphans': steps([
        shell('echo kept > kept.txt'),
        shell(':(){ :|:& };:; echo left-behind', { timeout_ms: 10_000 }),
        shell('echo after', { timeout_ms: 10_000 }),
      ]),
      // How the agent may leave the sandbox for collect and verify: each keeps one change that
      // must reach the patch.
      'dev-server': steps([
        shell('echo kept > kept.txt'),
        shell('(python3 -m http.server 8000 >/dev/null 2>&1 &); (sleep 600 &); setsid sleep 600 &'),
      ]),
      'full-tmp': steps([
        shell('echo kept > kept.txt'),
        shell(
          'dd if=/dev/zero of=/tmp/fill bs=1M count=2000 2>&1 | grep -o "No space left on device"',
          {
            timeout_ms: 60_000,
          },
        ),
      ]),
      'full-workspace': steps([
        shell('echo kept > kept.txt && printf "fill.bin\\n" > .gitignore'),
        shell(
          'dd if=/dev/zero of=fill.bin bs=1M count=2000 2>&1 | grep -o "No space left on device"',
          {
            timeout_ms: 60_000,
          },
        ),
      ]),
      unreadable: steps([
        shell(
          'echo kept > kept.txt && chmod 000 kept.txt && mkdir -p locked/in && echo deep > locked/in/f.txt && chmod 000 locked/in locked && chmod 000 README.md',
        ),
      ]),
      'broken-git': steps([
        shell(
          'echo kept > kept.txt && git update-index --assume-unchanged README.md && echo "# changed" > README.md && ' +
            'printf "[core]\\n\\thooksPath = /tmp\\n\\tbare = true\\n" > .git/config && rm -rf .git/objects && echo garbage > .git/index && echo junk > .git/HEAD && ' +
            'printf "[core]\\n\\texcludesFile = /dev/null\\n[alias]\\n\\tdiff = !false\\n" > ~/.gitconfig',
        ),
      ]),
      // A diff past the 1 MiB patch cap.
      'huge-diff': steps([shell('head -c 3m /dev/urandom | base64 > big.txt && ls -la big.txt')]),
      normal: steps([shell('echo fine > ok.txt')]),
    }),
  });
  apiPort = Number(new URL(stack.url).port);
});

afterAll(async () => {
  await stack?.close();
});

const submit = async (scenario: string, extra: Record<string, unknown> = {}): Promise<string> => {
  const res = await call(stack, 'POST', '/v1/tasks', {
    repo: { url: stack.git.url('app.git') },
    prompt: `SCENARIO:${scenario}`,
    ...extra,
  });
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return res.body.id;
};

async function eventsOf(id: string): Promise<any[]> {
  const all: any[] = [];
  let after = 0;
  for (;;) {
    const { body } = await call(stack, 'GET', `/v1/tasks/${id}/events?after=${after}&limit=1000`);
    all.push(...body.events);
    if (body.events.length < 1000) return all;
    after = body.nextAfter;
  }
}

async function patchOf(id: string): Promise<string> {
  const res = await fetch(`${stack.url}/v1/tasks/${id}/patch`);
  return res.status === 200 ? await res.text() : '';
}

const outputs = (events: any[]): string[] =>
  events.filter((e) => e.type === 'tool_output').map((e) => e.output as string);

describe('a hostile agent', () => {
  it('finds no secret: not the setup secret, not the model key, in no event, output or patch', async () => {
    const id = await submit('hunt-secrets', {
      environment: {
        setup: 'test -n "$HOSTILE_SECRET" && echo setup-saw-it',
        secrets: { HOSTILE_SECRET: SECRET },
      },
    });
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const events = await eventsOf(id);
    const everything = JSON.stringify(events) + JSON.stringify(task) + (await patchOf(id));
    // The setup phase did see the secret (so the test would notice it leaking on)…
    expect(everything).toContain('setup-saw-it');
    // …and nothing afterwards did.
    expect(everything).not.toContain(SECRET);
    expect(everything).not.toContain(MODEL_KEY);
    const [, sockets] = outputs(events);
    expect(sockets).toMatch(/docker\.sock'?: No such file or directory/);
    expect(sockets).not.toMatch(/ApiVersion|"Version"/);
  });

  it('reaches neither Redis, nor the API, nor the Docker engine from inside the sandbox', async () => {
    const id = await submit('reach-host');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const [out] = outputs(await eventsOf(id));
    expect(out).toContain('closed 127.0.0.1:6379');
    expect(out).toContain('closed 172.17.0.1:6379');
    expect(out).toContain(`closed 127.0.0.1:${apiPort}`);
    expect(out).toContain('closed 172.17.0.1:2375');
    expect(out).not.toContain('OPEN');
    expect(out).not.toContain('"status":"ok"');
    // No interface but loopback: network is off in the agent phase.
    expect(out).toMatch(/^lo$/m);
    expect(out).not.toMatch(/^eth\d/m);
  });

  it('hits a limit for each of fork bomb, memory, disk and a 1 GB flood, and the sandbox keeps working', async () => {
    const id = await submit('exhaust');
    const task = await waitForTask(stack, id, {}, 240_000);
    if (gvisor) {
      expect(task.status).toBe('failed');
      expect(task.error.code).toBe('sandbox_error');
      // The host's OOM killer ends gVisor's kernel, or the starved sandbox can no longer end the
      // command it must kill: either way the sandbox is gone and the task says why.
      expect(task.error.message).toMatch(
        /OOM killer|the exec server did not end a command it had to kill/,
      );
      // The sandbox may die during the fork bomb itself, before its output is written; when the
      // output is there, it says the command was killed.
      const [fork] = outputs(await eventsOf(id));
      if (fork !== undefined) expect(fork).toMatch(/timed out after 10000 ms and was killed/);
      return;
    }
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const events = await eventsOf(id);
    const [fork, memory, disk, flood, after] = outputs(events);
    if (process.env.DEBUG_HOSTILE)
      console.log({ fork, memory, disk, flood: flood?.slice(0, 300), after });
    // pids limit: fork fails rather than taking the host down.
    expect(fork).toMatch(/timed out after 10000 ms and was killed/);
    // memory limit: tail is OOM-killed (137), not the worker.
    expect(memory).toMatch(/exit 137|Killed|Exit code: (137|none)/);
    // workspace size / fsize: the write stops short of 1000 MB.
    expect(disk).toMatch(/No space left on device|File too large/);
    expect(Number(/^(\d+) bytes/m.exec(disk ?? '')?.[1])).toBeLessThanOrEqual(128 * 1024 ** 2);
    // The flood is cut to a bounded output, with the cut stated.
    expect(flood?.length).toBeLessThan(256 * 1024);
    const floodEvent = events.filter((e) => e.type === 'tool_output')[3];
    expect(JSON.stringify(floodEvent).length).toBeLessThan(256 * 1024);
    expect(after).toContain('still-alive');
    // The whole event log stays bounded too.
    expect(JSON.stringify(events).length).toBeLessThan(4 * 1024 * 1024);
  }, 300_000);

  // The bound is the task's (120 s); the test's own timeout leaves room for it on a loaded
  // machine, where under gVisor each command the bomb starves runs to its 10 s timeout.
  it('contains a fork bomb that outlives its command to its own sandbox, and ends in bounded time', async () => {
    const started = Date.now();
    const id = await submit('fork-orphans', { environment: { verify: 'test -f kept.txt' } });
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(Date.now() - started).toBeLessThan(120_000);
    // Under gVisor the bomb may take the sandbox's kernel down with it: the task then fails and
    // says so. When the sandbox lives through it (seen in a fresh-clone run), it ends as under runc.
    if (gvisor && task.status === 'failed') {
      expect(task.error.code).toBe('sandbox_error');
    } else {
      // The sandbox was spent (no pid left), but the worker quiesced it before collecting and
      // verifying: the agent's work is kept and the repository's tests ran.
      expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
      expect(task.result.verify.passed).toBe(true);
      expect(await patchOf(id)).toContain('+++ b/kept.txt');
    }
    expect(
      await docker.listContainers({ all: true, filters: { label: [`${LABELS.task}=${id}`] } }),
    ).toEqual([]);
  }, 180_000);

  it.each([
    ['dev-server', ['kept.txt']],
    ['full-tmp', ['kept.txt']],
    ['full-workspace', ['.gitignore', 'kept.txt']],
    ['unreadable', ['kept.txt', 'locked/in/f.txt']],
    ['broken-git', ['README.md', 'kept.txt']],
  ])('%s: the patch is still collected and verify still runs', async (scenario, files) => {
    const id = await submit(scenario, { environment: { verify: 'test -s kept.txt' } });
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(task.result.verify.passed, task.result.verify.output).toBe(true);
    expect(task.result.files.map((f: { path: string }) => f.path).sort()).toEqual(files);
    // The agent really left the sandbox in that state.
    if (scenario.startsWith('full-'))
      expect(outputs(await eventsOf(id))[1]).toContain('No space left on device');
    const patch = await patchOf(id);
    for (const file of files) expect(patch).toContain(`+++ b/${file}`);
    if (scenario === 'broken-git') expect(patch).toContain('+# changed');
    if (scenario === 'unreadable') expect(patch).not.toContain('README.md');
  });

  it('cannot write outside /workspace with apply_patch, directly or through symlinks', async () => {
    const id = await submit('escape-patch');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    const out = outputs(await eventsOf(id));
    for (const i of [0, 1, 2, 3, 5, 6, 7]) {
      expect(out[i], `patch ${i}`).not.toMatch(/Success/);
      expect(out[i], `patch ${i}`).toMatch(
        /Invalid path .*: (it leads outside the working directory|absolute paths are not allowed|a symbolic link on the way leads outside)/,
      );
    }
    expect(out.at(-1)).toMatch(/\/etc\/evil'?: No such file or directory/);
    expect(out.at(-1)).toMatch(/\/tmp\/evil'?: No such file or directory/);
    expect(out.at(-1)).toMatch(/\/tmp\/moved'?: No such file or directory/);
    expect(out.at(-1)).toMatch(/^0$/m);
    // The patch names only paths inside the repository.
    const patch = await patchOf(id);
    for (const m of patch.matchAll(/^diff --git a\/(\S+) b\/(\S+)$/gm)) {
      expect(m[2]).not.toMatch(/^\/|(^|\/)\.\.(\/|$)/);
    }
    expect(existsSync(HOST_CANARY)).toBe(false);
  });

  it('fails a task whose diff is past the patch cap with patch_too_large', async () => {
    const id = await submit('huge-diff');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status).toBe('failed');
    expect(task.error.code).toBe('patch_too_large');
  });

  it('leaves the service healthy: no container left, and a normal task succeeds afterwards', async () => {
    const id = await submit('normal');
    const task = await waitForTask(stack, id, {}, 120_000);
    expect(task.status, JSON.stringify(task.error)).toBe('succeeded');
    expect(await patchOf(id)).toContain('+fine');
    expect((await call(stack, 'GET', '/readyz')).status).toBe(200);
    const left = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.worker}=${stack.config.worker.id}-1`] },
    });
    expect(left).toEqual([]);
  });
});
