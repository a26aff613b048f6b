import { setTimeout as sleep } from 'node:timers/promises';
import type Docker from 'dockerode';
import { PatchbayError } from '@patchbay/core';
import {
  ChannelSandbox,
  type ChannelSandboxInit,
  type EngineState,
} from '../exec/channel-sandbox.js';
import type { SandboxNetwork, SandboxSpec } from '../types.js';
import { liveContainerNames } from './container.js';
import type { ResolvedProviderOptions } from './options.js';

/** How long a broken sandbox's state may take to show that its container exited. */
const STATE_SETTLE_MS = 2000;

function sandboxError(message: string): PatchbayError {
  return new PatchbayError('sandbox_error', message);
}

/** The container name a task's sandbox gets: its task in it, then a random part. */
export function containerName(taskId: string, random: string): string {
  const slug = taskId
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^[^a-z0-9]+/, '')
    .slice(0, 40);
  return `patchbay-${slug || 'pool'}-${random}`;
}

/**
 * A sandbox container on a Docker engine: the exec half from {@link ChannelSandbox}, and here
 * only what takes the engine: its network, its removal, its state.
 */
export class DockerSandbox extends ChannelSandbox {
  readonly #docker: Docker;
  readonly #container: Docker.Container;
  readonly #o: ResolvedProviderOptions;
  #network: SandboxNetwork;

  constructor(
    init: Omit<ChannelSandboxInit, 'id' | 'execServerPath' | 'transferTimeoutMs' | 'logger'> & {
      docker: Docker;
      container: Docker.Container;
      network: SandboxNetwork;
      options: ResolvedProviderOptions;
    },
  ) {
    super({
      ...init,
      id: init.container.id,
      execServerPath: init.options.execServerPath,
      transferTimeoutMs: init.options.transferTimeoutMs,
      logger: init.options.logger,
    });
    this.#docker = init.docker;
    this.#container = init.container;
    this.#o = init.options;
    this.#network = init.network;
  }

  /**
   * Hands a warm-pool container to a task: records its spec, names the container after the
   * task (its labels cannot change) and gives it the network it asks for. Pool containers start
   * without network.
   */
  async claim(spec: SandboxSpec): Promise<void> {
    this.spec = spec;
    const name = containerName(spec.taskId, this.name.slice(this.name.lastIndexOf('-') + 1));
    liveContainerNames.add(name);
    try {
      await this.#container.rename({ name });
    } catch (err) {
      liveContainerNames.delete(name);
      throw err;
    }
    liveContainerNames.delete(this.name);
    this.name = name;
    if ((spec.network ?? 'none') === 'outbound' && this.#network === 'none') {
      // A container in the `none` network cannot join another until it leaves it.
      await this.#docker.getNetwork('none').disconnect({ Container: this.id, Force: true });
      await this.#docker.getNetwork(this.#o.bridgeNetwork).connect({ Container: this.id });
      this.#network = 'outbound';
    }
  }

  async disableNetwork(): Promise<void> {
    this.assertAlive();
    const info = await this.#container.inspect();
    const networks = Object.keys(info.NetworkSettings.Networks ?? {}).filter((n) => n !== 'none');
    for (const network of networks) {
      await this.#docker
        .getNetwork(network)
        .disconnect({ Container: this.id, Force: true })
        .catch((err: unknown) => {
          throw sandboxError(`taking network ${network} away failed: ${(err as Error).message}`);
        });
    }
    this.#network = 'none';
    await this.assertOnlyLoopback();
  }

  protected async remove(): Promise<void> {
    try {
      await this.#container.remove({ force: true, v: true });
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode;
      // Gone already, or its removal already under way: either way it is going.
      if (status !== 404 && status !== 409) {
        throw sandboxError(`removing sandbox ${this.name} failed: ${(err as Error).message}`);
      }
    } finally {
      // Forgotten even when removal failed: the reaper then treats it as an orphan of this
      // worker and retries.
      liveContainerNames.delete(this.name);
    }
  }

  protected async engineState(): Promise<EngineState | undefined> {
    // The channel can die a moment before the engine has seen the container exit (a gVisor
    // sandbox ended by the host's OOM killer): give the engine that moment, so the state read
    // says why, not "running".
    const deadline = Date.now() + STATE_SETTLE_MS;
    let state = await this.#state();
    while (state.Running && Date.now() < deadline) {
      await sleep(100);
      state = await this.#state();
    }
    return {
      summary: `container ${state.Status}${state.Running ? '' : ` with code ${state.ExitCode}`}`,
      oomKilled: state.OOMKilled,
      exitCode: state.ExitCode,
    };
  }

  async #state(): Promise<Docker.ContainerInspectInfo['State']> {
    const info = await this.#container.inspect({ abortSignal: AbortSignal.timeout(5000) });
    return info.State;
  }
}
