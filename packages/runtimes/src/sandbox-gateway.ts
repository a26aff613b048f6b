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
  readonly #log: Logger;
  /** The network and the host's address on it, made once for both services. */
  readonly #network: () => Promise<{ network: string; hostAddress: string }>;
  readonly #gateway: () => Promise<ModelGateway>;
  readonly #proxy: () => Promise<EgressProxy>;
  readonly #started: Promise<{ close(): Promise<void> }>[] = [];

  constructor(options: SandboxGatewayOptions) {
    this.#log = options.log ?? silentLogger;
    this.#network = lazily(async () => {
      const network = options.network ?? 'patchbay-models';
      const { hostAddress } = await ensureInternalNetwork(options.docker, network);
      return { network, hostAddress };
    });
    this.#gateway = lazily(async () => {
      const { network, hostAddress } = await this.#network();
      const gateway = await this.#track(
        ModelGateway.start({ upstream: options.upstream, host: hostAddress, log: this.#log }),
      );
      this.#log.info({ network, url: gateway.url }, 'model gateway listening for sandboxes');
      return gateway;
    });
    this.#proxy = lazily(async () => {
      const { hostAddress } = await this.#network();
      return this.#track(
        EgressProxy.start({ host: hostAddress, pinned: options.pinned ?? {}, log: this.#log }),
      );
    });
  }

  async open(): Promise<OpenGateway> {
    const [{ network }, gateway] = await Promise.all([this.#network(), this.#gateway()]);
    return { network, url: gateway.url, grant: (taskId, budget) => gateway.grant(taskId, budget) };
  }

  /** The egress proxy on the same network, for sandboxes whose agent may reach listed names. */
  async openEgress(): Promise<OpenEgress> {
    const [{ network }, proxy] = await Promise.all([this.#network(), this.#proxy()]);
    return {
      network,
      proxyUrl: proxy.url,
      admit: (address, client) => proxy.admit(address, client),
    };
  }

  /** Remembers a started service, so that `close` stops it. */
  #track<T extends { close(): Promise<void> }>(starting: Promise<T>): Promise<T> {
    this.#started.push(starting);
    return starting;
  }

  async close(): Promise<void> {
    const started = await Promise.all(this.#started.splice(0).map((s) => s.catch(() => undefined)));
    await Promise.all(started.map((service) => service?.close() ?? Promise.resolve()));
  }
}

/** `start` run on the first call only; a failed start is tried again on the next call. */
function lazily<T>(start: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () =>
    (started ??= start().catch((err: unknown) => {
      started = undefined;
      throw err;
    }));
}
