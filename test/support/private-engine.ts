import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { LABELS, createDockerClient } from '@patchbay/sandbox';
import { retryUntilResolved } from './retry.js';

type Endpoint = Parameters<typeof createDockerClient>[0];

export interface PrivateEngineOptions {
  /** Holds its data root, exec root (so its own containerd) and pidfile. */
  dir: string;
  /** Its `--host` listener (`unix://…` or `tcp://…`). */
  host: string;
  /** How a client reaches it (TLS settings for a TCP listener). @default host */
  endpoint?: Endpoint;
  /**
   * The bridge interface for its default network. Required on this host's own network: left to
   * itself, dockerd would take the shared engine's `docker0`. Inside a network namespace of its
   * own it makes its own `docker0` there.
   */
  bridge?: string;
  /** Runs it inside this named network namespace (`ip netns`), with its own iptables. */
  netns?: string;
  /** More dockerd flags (TLS, a config file, a cgroup parent). */
  args?: string[];
}

/**
 * A `dockerd` of a test's own (data root, exec root, pidfile, bridge), so the shared engine the
 * other suites use is never touched. It can be stopped, killed and started again on the same
 * state, as a host's engine would be.
 */
export class PrivateEngine {
  readonly docker: ReturnType<typeof createDockerClient>;
  #process: ChildProcess | undefined;
  readonly #o: PrivateEngineOptions;

  constructor(options: PrivateEngineOptions) {
    this.#o = options;
    this.docker = createDockerClient(options.endpoint ?? options.host);
  }

  /** Starts it and waits until it answers. */
  async start(): Promise<void> {
    const { dir, host, bridge, netns, args = [] } = this.#o;
    const flags = [
      `--host=${host}`,
      `--data-root=${join(dir, 'data')}`,
      `--exec-root=${join(dir, 'exec')}`,
      `--pidfile=${join(dir, 'dockerd.pid')}`,
      '--shutdown-timeout=2',
      // On the host's network it must not touch the shared engine's chains; in a namespace of its
      // own, the chains are its own.
      ...(netns === undefined ? ['--iptables=false', '--ip-masq=false'] : []),
      ...(bridge === undefined ? [] : [`--bridge=${bridge}`]),
      ...args,
    ];
    const engine =
      netns === undefined
        ? spawn('dockerd', flags, { stdio: 'ignore' })
        : spawn('nsenter', [`--net=/run/netns/${netns}`, 'dockerd', ...flags], {
            stdio: 'ignore',
          });
    this.#process = engine;
    try {
      await retryUntilResolved(() => this.docker.ping(), {
        timeoutMs: 60_000,
        intervalMs: 200,
        abort: () =>
          engine.exitCode === null
            ? undefined
            : new Error(`dockerd exited with ${engine.exitCode}`),
      });
    } catch (err) {
      engine.kill('SIGKILL');
      throw err;
    }
  }

  /** Stops it as an operator would (SIGTERM), and waits until it has exited. */
  async stop(): Promise<void> {
    const engine = this.#process;
    if (!engine || engine.exitCode !== null || engine.signalCode !== null) return;
    const exited = once(engine, 'exit');
    engine.kill('SIGTERM');
    await exited;
  }

  /** Copies an image from the shared engine (no registry here). */
  async copyImage(image: string): Promise<void> {
    const tar = await createDockerClient(process.env.DOCKER_HOST).getImage(image).get();
    const loading = await this.docker.loadImage(tar);
    loading.resume();
    await finished(loading);
    await this.docker.getImage(image).inspect();
  }

  /** Ids of its containers with a label (`key=value`; Patchbay's own by default). */
  async containers(label = `${LABELS.managed}=true`): Promise<string[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: [label] } });
    return list.map((c) => c.Id);
  }

  /** Removes every container, then stops it. */
  async close(): Promise<void> {
    const all = await this.docker.listContainers({ all: true }).catch(() => []);
    await Promise.allSettled(
      all.map((c) => this.docker.getContainer(c.Id).remove({ force: true })),
    );
    await this.stop();
  }
}
