import { randomBytes } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type Docker from 'dockerode';
import { PatchbayError } from '@patchbay/core';
import { ExecChannel } from '../exec/channel.js';
import { resolveLimits, sameLimits } from '../limits.js';
import type { Sandbox, SandboxProvider, SandboxSpec } from '../types.js';
import {
  LABELS,
  containerCreateOptions,
  isGvisor,
  liveContainerNames,
  type ContainerPlan,
} from './container.js';
import { checkEngine } from './client.js';
import { splitDockerStream } from './demux.js';
import {
  resolveProviderOptions,
  type DockerSandboxProviderOptions,
  type ReapReport,
  type ResolvedProviderOptions,
} from './options.js';
import { WarmPool } from '../pool.js';
import { Reaper } from './reaper.js';
import { DockerSandbox, containerName } from './sandbox.js';

/**
 * The Docker driver of {@link SandboxProvider}: hardened containers (see
 * {@link containerCreateOptions}) reached through an exec channel, a warm pool, and a reaper
 * that starts with the provider (a first pass at once, then every `reaperIntervalMs`).
 */
export class DockerSandboxProvider implements SandboxProvider {
  /** The options in force, defaults filled in. */
  readonly options: ResolvedProviderOptions;
  readonly #reaper: Reaper;
  readonly #pool: WarmPool<DockerSandbox>;
  readonly #imageIds = new Map<string, string>();
  #closed: Promise<void> | undefined;

  constructor(options: DockerSandboxProviderOptions) {
    this.options = resolveProviderOptions(options);
    const o = this.options;
    this.#reaper = new Reaper(o, () => this.#pool.prune());
    this.#pool = new WarmPool({
      size: o.warmPoolSize,
      preloads: o.warmPoolPreloads,
      logger: o.logger,
      // Replaced well before the reaper's age limit could take one from under a task.
      maxIdleMs: o.maxAgeMs / 2,
      make: async (image, preload, signal) => {
        const sandbox = await this.#createContainer(
          {
            image,
            taskId: '',
            pooled: true,
            limits: o.limits,
            network: 'none',
            extraLabels: undefined,
          },
          { image, taskId: '' },
          signal,
        );
        if (preload === undefined) return sandbox;
        try {
          sandbox.preloaded = await preload.prepare(sandbox, signal);
          return sandbox;
        } catch (err) {
          await sandbox.destroy().catch(() => {});
          throw err;
        }
      },
    });
    this.#reaper.start();
    for (const image of o.warmPoolImages) this.#pool.want(image, { pinned: true });
  }

  async create(spec: SandboxSpec, options: { signal?: AbortSignal } = {}): Promise<Sandbox> {
    if (this.#closed !== undefined) throw sandboxError('the sandbox provider is closed');
    if (typeof spec.image !== 'string' || spec.image === '')
      throw sandboxError('a sandbox needs an image');
    if (typeof spec.taskId !== 'string') throw sandboxError('a sandbox needs a task id');
    if (options.signal?.aborted) throw cancelled();
    const o = this.options;
    const limits = resolveLimits(o.limits, spec.limits);
    const network = spec.network ?? 'none';
    // gVisor (here, with the host's network stack) sees only the interfaces it started with:
    // a pooled container could not be given a network later.
    const poolable = sameLimits(limits, o.limits) && (network === 'none' || !isGvisor(o.runtime));
    try {
      if (poolable) {
        const preloadKey = spec.preload?.key;
        const pooled =
          (preloadKey === undefined ? undefined : this.#pool.take(spec.image, preloadKey)) ??
          this.#pool.take(spec.image);
        if (pooled !== undefined) {
          try {
            await pooled.claim(spec);
            return pooled;
          } catch (err) {
            o.logger.warn({ err, sandbox: pooled.name }, 'a pooled sandbox could not be claimed');
            await pooled.destroy().catch(() => {});
          }
        }
      }
      return await this.#createContainer(
        {
          image: spec.image,
          taskId: spec.taskId,
          pooled: false,
          limits,
          network,
          extraLabels: spec.labels,
        },
        spec,
        options.signal,
      );
    } finally {
      // After this task's own create, so that warming the pool does not slow it down.
      this.#pool.want(spec.image);
      if (poolable && spec.preload !== undefined)
        this.#pool.want(spec.image, { preload: spec.preload });
    }
  }

  /** Resolves when the engine answers; rejects saying which engine and what stands in the way. */
  ready(): Promise<void> {
    return checkEngine(this.options.docker, this.options.endpoint);
  }

  async imageId(image: string): Promise<string> {
    const known = this.#imageIds.get(image);
    if (known !== undefined) return known;
    const { Id: id } = await this.options.docker.getImage(image).inspect();
    this.#imageIds.set(image, id);
    return id;
  }

  async running(): Promise<number> {
    const o = this.options;
    const containers = await o.docker.listContainers({
      filters: {
        label: [
          `${LABELS.managed}=true`,
          `${LABELS.namespace}=${o.namespace}`,
          `${LABELS.worker}=${o.workerId}`,
        ],
        status: ['running'],
      },
    });
    return containers.length;
  }

  /**
   * Containers of `image` ready in the warm pool now, prepared under `preloadKey` if given (for
   * metrics and tests).
   */
  warm(image: string, preloadKey?: string): number {
    return this.#pool.readyCount(image, preloadKey);
  }

  /** Runs a reaper pass now (it also runs by itself) and says what it removed. */
  reap(): Promise<ReapReport> {
    return this.#reaper.reapOnce();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#reaper.stop();
      await this.#pool.close();
    })();
    return this.#closed;
  }

  async #createContainer(
    plan: Omit<ContainerPlan, 'name'>,
    spec: SandboxSpec,
    signal: AbortSignal | undefined,
  ): Promise<DockerSandbox> {
    const o = this.options;
    const name = containerName(plan.taskId, randomBytes(4).toString('hex'));
    const createdAt = new Date();
    liveContainerNames.add(name);
    let container: Docker.Container | undefined;
    let channel: ExecChannel | undefined;
    try {
      container = await o.docker.createContainer(
        containerCreateOptions({ ...plan, name }, o, createdAt),
      );
      if (signal?.aborted) throw cancelled();
      // Attached before it starts, so nothing the server says is missed.
      const socket = (await container.attach({
        stream: true,
        stdin: true,
        stdout: true,
        stderr: true,
        hijack: true,
      })) as unknown as Duplex;
      if ('setNoDelay' in socket && typeof socket.setNoDelay === 'function')
        (socket as { setNoDelay(v: boolean): void }).setNoDelay(true);
      channel = new ExecChannel(socket, splitDockerStream);
      await container.start();
      if (signal?.aborted) throw cancelled();
      await channel.ping(o.readyTimeoutMs);
      return new DockerSandbox({
        docker: o.docker,
        container,
        name,
        createdAt,
        channel,
        spec,
        network: plan.network,
        options: o,
      });
    } catch (err) {
      const stderr = channel?.serverStderr.trim() ?? '';
      channel?.close(new Error('sandbox creation failed'));
      if (container !== undefined) await container.remove({ force: true, v: true }).catch(() => {});
      liveContainerNames.delete(name);
      if (err instanceof PatchbayError) throw err;
      throw createError(err, plan.image, stderr);
    }
  }
}

function sandboxError(message: string, cause?: unknown): PatchbayError {
  return new PatchbayError('sandbox_error', message, cause === undefined ? {} : { cause });
}

function cancelled(): PatchbayError {
  return new PatchbayError('cancelled', 'creating the sandbox was cancelled');
}

/** Connection failures of the engine's socket: the engine is down or restarting. */
const ENGINE_UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT']);

function createError(err: unknown, image: string, serverStderr: string): PatchbayError {
  const status = (err as { statusCode?: number }).statusCode;
  const message = err instanceof Error ? err.message : String(err);
  const code = (err as { code?: unknown }).code;
  if (status === undefined && typeof code === 'string' && ENGINE_UNREACHABLE.has(code))
    return new PatchbayError(
      'sandbox_error',
      `the Docker engine could not be reached: ${message}`,
      {
        cause: err,
        retryable: true,
      },
    );
  if (status === 404 && /image/i.test(message))
    return sandboxError(`sandbox image ${image} was not found on the Docker engine`, err);
  if (serverStderr !== '')
    return sandboxError(
      `the exec server of image ${image} did not start (does the image carry it? see docker/sandbox): ${serverStderr.slice(-500)}`,
      err,
    );
  return sandboxError(`creating a sandbox from ${image} failed: ${message}`, err);
}
