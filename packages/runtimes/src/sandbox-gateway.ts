import { type Logger, silentLogger } from '@patchbay/core';
import { EgressProxy, type EgressClient, type GatewayGrant, ModelGateway } from '@patchbay/gateway';
import { ensureInternalNetwork } from '@patchbay/sandbox';
import type Docker from 'dockerode';

export interface SandboxGatewayOptions {
  docker: Docker;
  /** The internal network sandboxes join to reach the gateway. @default 'patchbay-models' */
  network?: string;
  /** The model server and its key, as the worker's own agent uses them. */
  upstream: { baseUrl: string; apiKey: string | undefined };
  /** Names the egress proxy resolves to fixed addresses (the operator's). */
  pinned?: Readonly<Record<string, string>>;
  log?: Logger;
}

/** The egress proxy as an allowlist network's sandbox reaches it. */
export interface OpenEgress {
  network: string;
  proxyUrl: string;
  admit(address: string, client: EgressClient): () => void;
}

/** What a runtime gets: where the gateway is, on which network, and a token per task. */
export interface OpenGateway {
  network: string;
  /** The base URL as a sandbox on `network` reaches it. */
  url: string;
  grant(taskId: string, budget: { maxTokens: number; maxTurns: number }): GatewayGrant;
}

/**
 * The worker's services as sandboxes reach them: an internal Docker network (no route out, no
 * traffic between its containers) and, listening on the host's address on it (so nothing but the
 * network's sandboxes and the host reach them), the model gateway and the egress proxy. Each is
 * set up on first use.
 */
export class SandboxGateway {
  readonly #options: SandboxGatewayOptions;
  #opening: Promise<OpenGateway & { gateway: ModelGateway }> | undefined;
  #egress: Promise<OpenEgress & { proxy: EgressProxy }> | undefined;

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

  /** The egress proxy on the same network, for sandboxes whose agent may reach listed names. */
  openEgress(): Promise<OpenEgress> {
    this.#egress ??= this.#startEgress().catch((err: unknown) => {
      this.#egress = undefined;
      throw err;
    });
    return this.#egress;
  }

  async #startEgress(): Promise<OpenEgress & { proxy: EgressProxy }> {
    const network = this.#options.network ?? 'patchbay-models';
    const { hostAddress } = await ensureInternalNetwork(this.#options.docker, network);
    const proxy = await EgressProxy.start({
      host: hostAddress,
      pinned: this.#options.pinned ?? {},
      log: this.#options.log ?? silentLogger,
    });
    return {
      network,
      proxyUrl: proxy.url,
      admit: (address, client) => proxy.admit(address, client),
      proxy,
    };
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
    const [opened, egress] = await Promise.all([
      this.#opening?.catch(() => undefined),
      this.#egress?.catch(() => undefined),
    ]);
    this.#opening = this.#egress = undefined;
    await Promise.all([opened?.gateway.close(), egress?.proxy.close()]);
  }
}
