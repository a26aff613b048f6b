import { connect } from 'node:net';
import { type Logger, silentLogger } from '@patchbay/core';
import {
  EgressProxy,
  type EgressAdmission,
  type EgressClient,
  type GatewayGrant,
  ModelGateway,
} from '@patchbay/gateway';
import type { SandboxService } from '@patchbay/sandbox';

export interface SandboxGatewayOptions {
  /** The model server and its key, as the worker's own agent uses them. */
  upstream: { baseUrl: string; apiKey: string | undefined };
  /** Names the egress proxy resolves to fixed addresses (the operator's). */
  pinned?: Readonly<Record<string, string>>;
  log?: Logger;
}

/** The egress proxy, for sandboxes whose agent may reach listed names. */
export interface OpenEgress {
  /** One sandbox's way to the proxy, its connections known as `client`'s. */
  admit(client: EgressClient): EgressAdmission & { service: SandboxService };
}

/** What a runtime gets: the gateway as a service a sandbox can reach, and a token per task. */
export interface OpenGateway {
  service: SandboxService;
  /** The path under the URL a sandbox reaches the service at, e.g. `/v1`. */
  path: string;
  grant(taskId: string, budget: { maxTokens: number; maxTurns: number }): GatewayGrant;
}

/**
 * The worker's services for sandboxes: the model gateway and the egress proxy, listening on
 * the worker's loopback only. A sandbox reaches them through `Sandbox.reach`, which the
 * provider carries however its engine allows; nothing of them is on any network a sandbox is
 * on. Each starts on first use.
 */
export class SandboxGateway {
  readonly #log: Logger;
  readonly #gateway: () => Promise<ModelGateway>;
  readonly #proxy: () => Promise<EgressProxy>;
  readonly #started: Promise<{ close(): Promise<void> }>[] = [];

  constructor(options: SandboxGatewayOptions) {
    this.#log = options.log ?? silentLogger;
    this.#gateway = lazily(() =>
      this.#track(
        ModelGateway.start({ upstream: options.upstream, host: '127.0.0.1', log: this.#log }),
      ),
    );
    this.#proxy = lazily(() =>
      this.#track(EgressProxy.start({ pinned: options.pinned ?? {}, log: this.#log })),
    );
  }

  async open(): Promise<OpenGateway> {
    const gateway = await this.#gateway();
    const { hostname, port, pathname } = new URL(gateway.url);
    return {
      service: {
        name: 'model gateway',
        connect: () => connect({ host: hostname, port: Number(port), allowHalfOpen: true }),
      },
      path: pathname,
      grant: (taskId, budget) => gateway.grant(taskId, budget),
    };
  }

  async openEgress(): Promise<OpenEgress> {
    const proxy = await this.#proxy();
    return {
      admit: (client) => {
        const admission = proxy.admit(client);
        return {
          ...admission,
          service: { name: 'egress proxy', connect: () => admission.connect() },
        };
      },
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
