import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readFile, readdir, rmdir } from 'node:fs/promises';
import { type AddressInfo, type Socket, connect, createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * A second "host" on this machine: a network namespace joined to this one by a veth pair on a
 * /30 no route of this machine uses. This side of the pair is `peer` (the first host's address
 * as the second sees it); the namespace's side is `address`. Processes started with `nsenter`
 * (see {@link NetnsHost.command}) share the filesystem but not the network: from in there,
 * 127.0.0.1 is the namespace's own loopback, and this host is reachable only at `peer`.
 *
 * A lost host is `kill()`: every process of the namespace and every process under its cgroup
 * (its engine's containers, placed there with `--cgroup-parent`) is SIGKILLed at once.
 */
export interface NetnsHost {
  /** The namespace's name (`ip netns`). */
  name: string;
  /** This host's address on the pair. */
  peer: string;
  /** The namespace's address on the pair. */
  address: string;
  /** The cgroup (v1 and v2 alike, a path under each hierarchy) its engine's containers go in. */
  cgroup: string;
  /** The command prefix that runs a program in the namespace. */
  command: (program: string, args: string[]) => [string, string[]];
  /** SIGKILLs everything of the host, engine and containers included; resolves once none is left. */
  kill(): Promise<number>;
  close(): Promise<void>;
}

export async function createNetnsHost(prefix: string): Promise<NetnsHost> {
  const id = randomBytes(3).toString('hex');
  const name = `${prefix}-${id}`;
  const here = `pb${id}a`;
  const there = `pb${id}b`;
  const routes = (await run('ip', ['-4', 'route'])).stdout;
  const free = Array.from({ length: 60 }, (_, i) => `10.232.${i * 4}`).filter(
    (net) => !routes.includes(`${net}.`),
  );
  const net = free[Math.floor(Math.random() * free.length)];
  if (net === undefined) throw new Error('no free /30 for a second host');
  const [peer, address] = [`${net}.1`, `${net}.2`];
  const ip = (...args: string[]) => run('ip', args);
  await ip('netns', 'add', name);
  try {
    await ip('link', 'add', here, 'type', 'veth', 'peer', 'name', there);
    await ip('link', 'set', there, 'netns', name);
    await ip('addr', 'add', `${peer}/30`, 'dev', here);
    await ip('link', 'set', here, 'up');
    await ip('-n', name, 'addr', 'add', `${address}/30`, 'dev', there);
    await ip('-n', name, 'link', 'set', there, 'up');
    await ip('-n', name, 'link', 'set', 'lo', 'up');
  } catch (err) {
    await ip('link', 'del', here).catch(() => undefined);
    await ip('netns', 'del', name).catch(() => undefined);
    throw err;
  }
  const cgroup = `/${name}`;

  /** Pids of the namespace's processes and of every process under the host's cgroup. */
  const pids = async (): Promise<number[]> => {
    const inNetns = (await run('ip', ['netns', 'pids', name])).stdout.split('\n');
    const inCgroup = await cgroupTasks(join(CGROUP_PIDS, cgroup)).catch(() => []);
    return [...new Set([...inNetns, ...inCgroup].filter((p) => /^\d+$/.test(p)).map(Number))];
  };

  return {
    name,
    peer,
    address,
    cgroup,
    command: (program, args) => ['nsenter', [`--net=/run/netns/${name}`, program, ...args]],
    kill: async () => {
      let killed = 0;
      for (let round = 0; round < 50; round++) {
        const left = await pids();
        if (left.length === 0) return killed;
        for (const pid of left) {
          try {
            process.kill(pid, 'SIGKILL');
            killed++;
          } catch {
            // already gone
          }
        }
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      throw new Error(`processes of ${name} outlived SIGKILL: ${(await pids()).join(' ')}`);
    },
    close: async () => {
      await ip('link', 'del', here).catch(() => undefined);
      await ip('netns', 'del', name).catch(() => undefined);
      const hierarchies = await readdir('/sys/fs/cgroup').catch(() => []);
      for (const h of ['', ...hierarchies]) {
        await rmdir(join('/sys/fs/cgroup', h, cgroup)).catch(() => undefined);
      }
    },
  };
}

/** cgroup v1 keeps pids in a hierarchy of their own, v2 in the one tree. */
const V1 = existsSync('/sys/fs/cgroup/pids/tasks');
const CGROUP_PIDS = V1 ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';

/** Every pid under a cgroup directory, its children's included. */
async function cgroupTasks(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const own = (await readFile(join(dir, V1 ? 'tasks' : 'cgroup.procs'), 'utf8')).split('\n');
  const nested = await Promise.all(
    entries.filter((e) => e.isDirectory()).map((e) => cgroupTasks(join(dir, e.name))),
  );
  return [...own, ...nested.flat()];
}

/**
 * Publishes a loopback-only service of this host at `address` (its side of a pair), as a host's
 * service is reachable at its address: connections to the returned port are joined to
 * 127.0.0.1:`target()`.
 */
export async function publish(
  address: string,
  target: () => number,
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(target(), '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  server.listen(0, address);
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
