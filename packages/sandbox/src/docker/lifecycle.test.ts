import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { isPatchbayError } from '@patchbay/core';
import type { DockerSandboxProvider } from './provider.js';
import {
  TEST_IMAGE,
  TEST_GVISOR,
  containerExists,
  docker,
  namespaceContainers,
  removeNamespace,
  sweepStaleTestContainers,
  testProvider,
} from './test-support.js';

const gvisor = TEST_GVISOR;
import type { Sandbox } from '../types.js';

const MiB = 1024 * 1024;
const providers: DockerSandboxProvider[] = [];
const namespaces = new Set<string>();

function provider(options: Parameters<typeof testProvider>[0] = {}): DockerSandboxProvider {
  const p = testProvider(options);
  providers.push(p);
  namespaces.add(p.options.namespace);
  return p;
}

beforeAll(() => sweepStaleTestContainers());

afterEach(async () => {
  await Promise.allSettled(providers.splice(0).map((p) => p.close()));
});

afterAll(async () => {
  await Promise.allSettled([...namespaces].map((ns) => removeNamespace(ns)));
});

async function running(id: string): Promise<boolean> {
  try {
    return (await docker.getContainer(id).inspect()).State.Running;
  } catch {
    return false;
  }
}

function isSandboxError(err: unknown): boolean {
  return isPatchbayError(err, 'sandbox_error');
}

describe('exec channel', () => {
  it('fails running and later calls with a clear error once the channel dies, and reports broken', async () => {
    const sb = await provider().create({ image: TEST_IMAGE, taskId: 'channel-death' });
    const long = sb.exec('sleep 30');
    // The exec server is the parent of every command: kill it from inside.
    const killer = sb.exec('kill -KILL $PPID; sleep 30');
    for (const pending of [long, killer]) {
      await expect(pending).rejects.toSatisfy(
        (err) => isSandboxError(err) && /is broken: its exec channel died/.test(String(err)),
      );
    }
    expect(sb.broken).toBe(true);
    const started = Date.now();
    await expect(sb.exec(['true'])).rejects.toSatisfy(
      (err) => isSandboxError(err) && /is broken/.test(String(err)),
    );
    await expect(sb.readFile('/etc/hostname')).rejects.toSatisfy(isSandboxError);
    expect(Date.now() - started).toBeLessThan(1000);
    await sb.destroy();
    expect(await containerExists(sb.id)).toBe(false);
  });

  it('holds a sandbox that floods its own exec stream to the output limits: its channel breaks, the worker stays flat', async () => {
    const sb = await provider().create({ image: TEST_IMAGE, taskId: 'channel-flood' });
    // The init process holds the stream's pipes and runs as the sandbox user, so a command can
    // write forged frames into it: 200 MB of output frames for the first few command ids.
    const forge = [
      'import os, struct',
      "fd = os.open('/proc/1/fd/1', os.O_WRONLY)",
      "payload = b'\\x01' + b'A' * 65535",
      'for _ in range(400):',
      '    for cid in range(1, 9):',
      "        os.write(fd, struct.pack('<IBI', len(payload), 130, cid) + payload)",
    ].join('\n');
    const before = process.memoryUsage().rss;
    const victim = sb.exec('sleep 20');
    const attacker = sb.exec(['python3', '-c', forge], { timeoutMs: 20_000 });
    await expect(victim).rejects.toSatisfy(
      (err) =>
        isSandboxError(err) && /more output than allowed|exec channel died/.test(String(err)),
    );
    await expect(attacker).rejects.toSatisfy(isSandboxError);
    expect(sb.broken).toBe(true);
    expect(process.memoryUsage().rss - before).toBeLessThan(64 * MiB);
    await sb.destroy();
  });

  it('destroys idempotently, and a destroyed sandbox refuses work', async () => {
    const sb = await provider().create({ image: TEST_IMAGE, taskId: 'destroy' });
    await Promise.all([sb.destroy(), sb.destroy()]);
    await sb.destroy();
    expect(await containerExists(sb.id)).toBe(false);
    await expect(sb.exec(['true'])).rejects.toSatisfy(
      (err) => isSandboxError(err) && /was destroyed/.test(String(err)),
    );
  });

  it('refuses an image without the exec server, or a missing image, and leaves nothing behind', async () => {
    const p = provider();
    await expect(
      p.create({ image: 'patchbay/base:bookworm', taskId: 'no-execd' }),
    ).rejects.toSatisfy((err) => isSandboxError(err) && /exec server/.test(String(err)));
    await expect(
      p.create({ image: 'patchbay/no-such-image:1', taskId: 'no-image' }),
    ).rejects.toSatisfy((err) => isSandboxError(err) && /not found/.test(String(err)));
    expect(await namespaceContainers(p.options.namespace)).toEqual([]);
  });
});

describe('network', () => {
  it('has no network by default, and disableNetwork takes an outbound network away', async () => {
    const p = provider();
    const [server, client, isolated] = await Promise.all([
      p.create({ image: TEST_IMAGE, taskId: 'net-server', network: 'outbound' }),
      p.create({ image: TEST_IMAGE, taskId: 'net-client', network: 'outbound' }),
      p.create({ image: TEST_IMAGE, taskId: 'net-isolated' }),
    ]);
    // The provider counts its own running sandboxes (the worker's gauge).
    expect(await p.running()).toBeGreaterThanOrEqual(3);
    // A server started in the background keeps running after the command.
    await server.exec('python3 -m http.server 8080 --bind 0.0.0.0 &');
    await expect
      .poll(async () =>
        (
          await server.exec('curl -s -o /dev/null -w %{http_code} localhost:8080')
        ).output.toString(),
      )
      .toBe('200');
    const ip = (await docker.getContainer(server.id).inspect()).NetworkSettings.Networks.bridge!
      .IPAddress;
    const fetch = `curl -s -o /dev/null -w %{http_code} --max-time 3 http://${ip}:8080/`;
    const interfaces = "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '";

    // The positive control: with network, the server is reachable.
    expect((await client.exec(fetch)).output.toString()).toBe('200');

    const none = await isolated.exec(
      `${fetch}; echo " curl=$?"; ${interfaces}; getent hosts deb.debian.org; echo "getent=$?"`,
    );
    expect(none.output.toString()).toMatch(/^000 curl=7\nlo\ngetent=2\n$/);

    await client.disableNetwork();
    await client.disableNetwork();
    const after = await client.exec(
      `${fetch}; echo " curl=$?"; ${interfaces}; getent hosts deb.debian.org; echo "getent=$?"`,
    );
    expect(after.output.toString()).toMatch(/^000 curl=7\nlo\ngetent=2\n$/);
  });
});

describe('warm pool', () => {
  it('hands out a ready container fast, to one task only, and replaces it', async () => {
    const p = provider({ warmPoolSize: 1, warmPoolImages: [TEST_IMAGE] });
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);
    const started = performance.now();
    const first = await p.create({ image: TEST_IMAGE, taskId: 'pooled-1' });
    const readyMs = performance.now() - started;
    expect((await first.exec(['echo', 'ok'])).output.toString()).toBe('ok\n');
    expect(readyMs).toBeLessThan(100);
    expect(first.spec.taskId).toBe('pooled-1');
    const taken = await docker.getContainer(first.id).inspect();
    expect(taken.Config.Labels['patchbay.pool']).toBe('true');
    // A label cannot change: the name tells `docker ps` which task holds it.
    expect(taken.Name).toMatch(/^\/patchbay-pooled-1-[0-9a-f]{8}$/);
    expect((first as unknown as { name: string }).name).toBe(taken.Name.slice(1));

    // Its replacement is made; the next task gets another container, with network if asked.
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);
    const second = await p.create({ image: TEST_IMAGE, taskId: 'pooled-2', network: 'outbound' });
    expect(second.id).not.toBe(first.id);
    const ifaces = await second.exec("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort");
    expect(ifaces.output.toString()).toBe('eth0\nlo\n');
    // Under gVisor a sandbox cannot gain a network after it started: made cold instead.
    expect((await docker.getContainer(second.id).inspect()).Config.Labels['patchbay.pool']).toBe(
      gvisor ? undefined : 'true',
    );
    await first.destroy();
    expect(await containerExists(first.id)).toBe(false);

    // Lower limits than the pool's: made cold, with those limits.
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);
    const small = await p.create({
      image: TEST_IMAGE,
      taskId: 'pooled-small',
      limits: { memoryBytes: 256 * MiB },
    });
    expect((await docker.getContainer(small.id).inspect()).HostConfig.Memory).toBe(256 * MiB);
    expect(p.warm(TEST_IMAGE)).toBe(1);

    // Closing destroys what is pooled; handed-out sandboxes are their tasks' to destroy.
    const pooled = (await namespaceContainers(p.options.namespace)).filter(
      (c) => c.Labels['patchbay.pool'] === 'true' && c.Id !== second.id,
    );
    expect(pooled).toHaveLength(1);
    await p.close();
    expect(await containerExists(pooled[0]!.Id)).toBe(false);
    expect(await running(second.id)).toBe(true);
    await Promise.all([second.destroy(), small.destroy()]);
  });

  it('keeps a prepared container per preload key, for that key only, and drops a failed one', async () => {
    const p = provider({ warmPoolSize: 1, warmPoolPreloads: 1, warmPoolImages: [TEST_IMAGE] });
    const prepared: string[] = [];
    /** Writes which version it prepared into the workspace, as a checkout would. */
    const preload = (key: string, version: string) => ({
      key,
      prepare: async (sandbox: Sandbox) => {
        await sandbox.writeFile('/workspace/version', version);
        prepared.push(`${key}:${version}`);
        return version;
      },
    });
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);

    // Nothing prepared yet: the plain pool serves, and a container for the key is prepared.
    const first = await p.create({
      image: TEST_IMAGE,
      taskId: 'pre-1',
      preload: preload('a', 'v1'),
    });
    expect(first.preloaded).toBeUndefined();
    await expect.poll(() => p.warm(TEST_IMAGE, 'a'), { timeout: 30_000 }).toBe(1);
    expect(prepared).toEqual(['a:v1']);

    // Another key does not get it.
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);
    const other = await p.create({
      image: TEST_IMAGE,
      taskId: 'pre-2',
      preload: preload('b', 'x'),
    });
    expect(other.preloaded).toBeUndefined();
    expect((await other.exec('ls /workspace')).output.toString()).toBe('');

    // Only one key keeps a prepared container: `b`, the most recent, pushed `a` out.
    await expect.poll(() => p.warm(TEST_IMAGE, 'b'), { timeout: 30_000 }).toBe(1);
    expect(p.warm(TEST_IMAGE, 'a')).toBe(0);
    const again = await p.create({
      image: TEST_IMAGE,
      taskId: 'pre-3',
      preload: preload('b', 'y'),
    });
    expect(again.preloaded).toBe('x');
    expect(again.spec.taskId).toBe('pre-3');
    expect((await again.readFile('/workspace/version')).toString()).toBe('x');
    // Its replacement is prepared by the latest spec's preload.
    await expect.poll(() => prepared.at(-1), { timeout: 30_000 }).toBe('b:y');

    // A failed preparation leaves nothing behind and is not retried.
    const failing = {
      key: 'c',
      prepare: async () => {
        prepared.push('c');
        throw new Error('no such commit');
      },
    };
    await expect.poll(() => p.warm(TEST_IMAGE), { timeout: 30_000 }).toBe(1);
    const plain = await p.create({ image: TEST_IMAGE, taskId: 'pre-4', preload: failing });
    await expect.poll(() => prepared.includes('c'), { timeout: 30_000 }).toBe(true);
    await new Promise((r) => setTimeout(r, 1500));
    expect(prepared.filter((x) => x === 'c')).toHaveLength(1);
    expect(p.warm(TEST_IMAGE, 'c')).toBe(0);
    const handedOut = new Set([first.id, other.id, again.id, plain.id]);
    await expect
      .poll(
        async () =>
          (await namespaceContainers(p.options.namespace)).filter((c) => !handedOut.has(c.Id))
            .length,
        { timeout: 30_000 },
      )
      .toBe(1); // the plain pool's: `c` pushed `b`'s out, and then failed
    await Promise.all([first, other, again, plain].map((s) => s.destroy()));
  });
});

describe('reaper', () => {
  /** Starts a stand-in worker process that makes one sandbox; resolves with both. */
  async function crashingWorker(namespace: string, workerId: string) {
    const script = fileURLToPath(new URL('./test-crash-worker.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', script, namespace, workerId, TEST_IMAGE],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const [line] = (await once(child.stdout, 'data')) as [Buffer];
    const { id } = JSON.parse(line.toString()) as { id: string };
    return { child, id };
  }

  it('removes the containers of workers killed with SIGKILL: at once when the same worker comes back, else within one reaper period', async () => {
    const namespace = `test-${randomUUID().slice(0, 8)}`;
    namespaces.add(namespace);
    const [w1, w2] = [`crashed-${randomUUID().slice(0, 8)}`, `crashed-${randomUUID().slice(0, 8)}`];
    const workers = await Promise.all([
      crashingWorker(namespace, w1),
      crashingWorker(namespace, w2),
    ]);
    for (const { child, id } of workers) {
      expect(await running(id)).toBe(true);
      child.kill('SIGKILL');
      await once(child, 'exit');
    }
    const [id1, id2] = workers.map((w) => w.id) as [string, string];
    // Their attach connections dropped: each exec server saw EOF and its container stopped.
    for (const id of [id1, id2])
      await expect.poll(() => running(id), { timeout: 10_000 }).toBe(false);

    // The first worker comes back under its own id: what carries that id and is unknown to the
    // new process is a leftover, removed by the reaper's first pass.
    const comeback = provider({ namespace, workerId: w1 });
    expect((await comeback.reap()).removed).toEqual([
      { id: id1, name: expect.any(String), reason: 'orphan-of-this-worker' },
    ]);
    expect(await containerExists(id2)).toBe(true);

    // Any other worker, told by the queue layer that the second one is gone, removes its
    // container on its own schedule.
    provider({
      namespace,
      reaperIntervalMs: 1000,
      isInUse: async (owner) => owner.workerId !== w2,
    });
    const started = Date.now();
    await expect.poll(() => containerExists(id2), { timeout: 5000, interval: 100 }).toBe(false);
    expect(Date.now() - started).toBeLessThan(2500);
  });

  it("judges other workers' containers by isInUse, and removes any past the maximum age", async () => {
    const namespace = `test-${randomUUID().slice(0, 8)}`;
    const dead = provider({ namespace, workerId: `dead-${randomUUID().slice(0, 8)}` });
    const live = provider({ namespace, workerId: `live-${randomUUID().slice(0, 8)}` });
    const [deadSb, liveSb]: Sandbox[] = await Promise.all([
      dead.create({ image: TEST_IMAGE, taskId: 'task-of-dead-worker' }),
      live.create({ image: TEST_IMAGE, taskId: 'task-of-live-worker' }),
    ]);
    if (deadSb === undefined || liveSb === undefined) throw new Error('unreachable');
    const asked: { workerId: string; taskId: string | undefined }[] = [];
    const reaper = provider({
      namespace,
      isInUse: async (owner) => {
        asked.push({ workerId: owner.workerId, taskId: owner.taskId });
        return owner.workerId === live.options.workerId;
      },
    });
    const report = await reaper.reap();
    expect(report.removed).toEqual([
      { id: deadSb.id, name: expect.any(String), reason: 'owner-gone' },
    ]);
    expect(asked).toEqual(
      expect.arrayContaining([
        { workerId: dead.options.workerId, taskId: 'task-of-dead-worker' },
        { workerId: live.options.workerId, taskId: 'task-of-live-worker' },
      ]),
    );
    expect(await containerExists(liveSb.id)).toBe(true);
    // The sandbox whose container was reaped finds out it is broken.
    await expect(deadSb.exec(['true'])).rejects.toSatisfy(isSandboxError);
    expect(deadSb.broken).toBe(true);

    // Past the maximum age, even a sandbox in use goes.
    const strict = provider({ namespace, maxAgeMs: 1, isInUse: async () => true });
    expect((await strict.reap()).removed).toEqual([
      { id: liveSb.id, name: expect.any(String), reason: 'max-age' },
    ]);
    expect(await containerExists(liveSb.id)).toBe(false);
  });
});
