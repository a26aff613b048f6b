import { type Logger, silentLogger } from '@patchbay/core';
import { type GatewayGrant, ModelGateway } from '@patchbay/gateway';
import { ensureInternalNetwork } from '@patchbay/sandbox';
import type Docker from 'dockerode';

export interface SandboxGatewayOptions {
  docker: Docker;
  /** The internal network sandboxes join to reach the gateway. @default 'patchbay-models' */
  network?: string;
  /** The model server and its key, as the worker's own agent uses them. */
  upstream: { baseUrl: string; apiKey: string | undefined };
  log?: Logger;
}

/** What a runtime gets: where the gateway is, on which network, and a token per task. */
export interface OpenGateway {
  network: string;
  /** The base URL as a sandbox on `network` reaches it. */
  url: string;
  grant(taskId: string, budget: { maxTokens: number; maxTurns: number }): GatewayGrant;
}

/**
 * The model gateway as sandboxes reach it: an internal Docker network (no route out, no traffic
 * between its containers) and the gateway listening on the host's address on it, so nothing but
 * the network's sandboxes (and the host) can reach it. Set up on first use.
 */
export class SandboxGateway {
  readonly #options: SandboxGatewayOptions;
  #opening: Promise<OpenGateway & { gateway: ModelGateway }> | undefined;

  constructor(options: SandboxGatewayOptions) {
    this.#options = options;
  }

  open(): Promise<OpenGateway> {
    this.#opening ??= this.#start().catch((err: unknown) => {
      this.#opening = undefined;
      throw err;
    });
    return this.#opening;
  }

  async #start(): Promise<OpenGateway & { gateway: ModelGateway }> {
    const network = this.#options.network ?? 'patchbay-models';
    const { hostAddress } = await ensureInternalNetwork(this.#options.docker, network);
    const gateway = await ModelGateway.start({
      upstream: this.#options.upstream,
      host: hostAddress,
      log: this.#options.log ?? silentLogger,
    });
    (this.#options.log ?? silentLogger).info(
      { network, url: gateway.url },
      'model gateway listening for sandboxes',
    );
    return {
      network,
      url: gateway.url,
      grant: (taskId, budget) => gateway.grant(taskId, budget),
      gateway,
    };
  }

  async close(): Promise<void> {
    const opened = await this.#opening?.catch(() => undefined);
    this.#opening = undefined;
    await opened?.gateway.close();
  }
}
