import { hostname } from 'node:os';
import type Docker from 'dockerode';
import { PatchbayError, silentLogger, type Config, type Logger } from '@patchbay/core';
import { DEFAULT_LIMITS, checkLimits } from '../limits.js';
import type { SandboxLimits } from '../types.js';
import type { DockerEndpoint } from './client.js';

const MiB = 1024 * 1024;

/** Who a sandbox container belongs to, as its labels tell; what the reaper asks about. */
export interface SandboxOwner {
  containerId: string;
  /** Container name, without the leading slash. */
  name: string;
  workerId: string;
  /** `undefined` for a warm-pool container: it was made before any task was known. */
  taskId: string | undefined;
  createdAt: Date;
  /** Docker's state: `running`, `exited`, `created`, … */
  state: string;
}

/** The account of one reaper pass. */
export interface ReapReport {
  removed: { id: string; name: string; reason: ReapReason }[];
  /** Volumes removed. */
  volumes: string[];
}

export type ReapReason = 'max-age' | 'orphan-of-this-worker' | 'stopped' | 'owner-gone';

export interface DockerSandboxProviderOptions {
  /** The Docker client (see {@link createDockerClient}); injected so tests and drivers share it. */
  docker: Docker;
  /** Where that client points, for the errors that name the engine. @default the local socket */
  endpoint?: DockerEndpoint;
  /**
   * This worker's name, written into every container's labels. It must be unique among live
   * workers: the reaper removes containers labelled with it that this process does not know.
   * @default `${hostname()}-${process.pid}`
   */
  workerId?: string;
  /**
   * Containers of other namespaces are invisible to this provider's reaper, so that two
   * deployments (or two test runs) can share one engine. Pass the Redis key prefix.
   * @default 'patchbay'
   */
  namespace?: string;
  /**
   * Operator limits: the default of every sandbox and the ceiling a spec may not exceed.
   * Missing fields take {@link DEFAULT_LIMITS}.
   */
  limits?: Partial<SandboxLimits>;
  /** Size cap of the agent user's home (a tmpfs, like /tmp). @default 512 MiB */
  homeBytes?: number;
  /**
   * Size cap of /run/patchbay, the worker's own scratch tmpfs in the sandbox (the patch being
   * collected, a pristine copy of the base when the agent broke its `.git`), apart from the
   * agent's /tmp and workspace so that filling those cannot stop a collection.
   * @default 1 GiB
   */
  scratchBytes?: number;
  /**
   * Ready containers kept per image. 0 turns the pool off. A pooled container serves one task
   * and is then destroyed.
   * @default 1
   */
  warmPoolSize?: number;
  /**
   * Images warmed from the start. Any other image gets a pool once a task has used it (the two
   * most recently used such images keep one).
   * @default []
   */
  warmPoolImages?: readonly string[];
  /**
   * Preload keys (see `SandboxSpec.preload`) that keep a prepared container, the most recently
   * used first; 0 prepares none. Counts only while `warmPoolSize` is above 0.
   * @default 2
   */
  warmPoolPreloads?: number;
  /** How often the reaper runs (it also runs at once on start). 0: only {@link DockerSandboxProvider.reap}. @default 60_000 */
  reaperIntervalMs?: number;
  /** Age past which any sandbox is removed, running task or not. @default 21_600_000 (6 h) */
  maxAgeMs?: number;
  /**
   * Tells the reaper whether a container of *another* worker is still in use: for a task,
   * whether that task is running on that worker; for a pooled container (no task), whether the
   * worker is alive. The queue layer knows. When absent, other workers' containers are removed
   * once they have been stopped for a minute (a dead worker's containers stop by themselves),
   * and running ones only past `maxAgeMs`. A rejection keeps the container.
   * @default undefined
   */
  isInUse?: (owner: SandboxOwner) => Promise<boolean>;
  /** The exec server's path inside the image (see docker/sandbox). @default '/opt/patchbay/bin/pb-execd' */
  execServerPath?: string;
  /** The unprivileged user commands run as, and its home. @default { uid: 1000, gid: 1000, home: '/home/agent' } */
  user?: { uid: number; gid: number; home: string };
  /** The Docker network an `outbound` sandbox joins. @default 'bridge' */
  bridgeNetwork?: string;
  /**
   * The OCI runtime every sandbox runs under, as the engine knows it: `runc`, or `runsc` for
   * gVisor (a kernel of its own between the sandbox and the host's; the engine must have it
   * registered, see infra/local/docker.sh).
   * @default 'runc'
   */
  runtime?: string;
  /**
   * Under gVisor, a library in the image preloaded into every command (see
   * docker/sandbox/execd/gvisor-statx.c); empty for none, for an image without it.
   * @default '/opt/patchbay/lib/gvisor-statx.so'
   */
  gvisorPreload?: string;
  /**
   * Operator overrides merged over the hardened HostConfig (e.g. `{ Runtime: 'runsc' }`). Tasks
   * never reach this.
   * @default {}
   */
  hostConfig?: Docker.HostConfig;
  /** Timeout of a file transfer (tar in or out, one file). @default 600_000 */
  transferTimeoutMs?: number;
  /** How long a new container may take to answer on its exec channel. @default 30_000 */
  readyTimeoutMs?: number;
  /** @default a logger that drops everything */
  logger?: Logger;
}

export interface ResolvedProviderOptions {
  docker: Docker;
  endpoint: DockerEndpoint;
  workerId: string;
  namespace: string;
  limits: SandboxLimits;
  homeBytes: number;
  scratchBytes: number;
  warmPoolSize: number;
  warmPoolImages: readonly string[];
  warmPoolPreloads: number;
  reaperIntervalMs: number;
  maxAgeMs: number;
  isInUse: ((owner: SandboxOwner) => Promise<boolean>) | undefined;
  execServerPath: string;
  user: { uid: number; gid: number; home: string };
  bridgeNetwork: string;
  runtime: string;
  gvisorPreload: string;
  hostConfig: Docker.HostConfig;
  transferTimeoutMs: number;
  readyTimeoutMs: number;
  logger: Logger;
}

function invalid(message: string): never {
  throw new PatchbayError('sandbox_error', `invalid sandbox options: ${message}`);
}

/** Turns provider options into resolved ones: every default filled in, every value checked. */
export function resolveProviderOptions(o: DockerSandboxProviderOptions): ResolvedProviderOptions {
  checkLimits(o.limits ?? {}, 'limits');
  const limits: SandboxLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(o.limits ?? {}) as [keyof SandboxLimits, number][]) {
    if (value !== undefined) limits[key] = value;
  }
  const resolved: ResolvedProviderOptions = {
    docker: o.docker,
    endpoint: o.endpoint ?? {},
    workerId: o.workerId ?? `${hostname()}-${process.pid}`,
    namespace: o.namespace ?? 'patchbay',
    limits,
    homeBytes: o.homeBytes ?? 512 * MiB,
    scratchBytes: o.scratchBytes ?? 1024 * MiB,
    warmPoolSize: o.warmPoolSize ?? 1,
    warmPoolImages: o.warmPoolImages ?? [],
    warmPoolPreloads: o.warmPoolPreloads ?? 2,
    reaperIntervalMs: o.reaperIntervalMs ?? 60_000,
    maxAgeMs: o.maxAgeMs ?? 6 * 3600 * 1000,
    isInUse: o.isInUse,
    execServerPath: o.execServerPath ?? '/opt/patchbay/bin/pb-execd',
    user: o.user ?? { uid: 1000, gid: 1000, home: '/home/agent' },
    bridgeNetwork: o.bridgeNetwork ?? 'bridge',
    runtime: o.runtime ?? 'runc',
    gvisorPreload: o.gvisorPreload ?? '/opt/patchbay/lib/gvisor-statx.so',
    hostConfig: o.hostConfig ?? {},
    transferTimeoutMs: o.transferTimeoutMs ?? 600_000,
    readyTimeoutMs: o.readyTimeoutMs ?? 30_000,
    logger: o.logger ?? silentLogger,
  };
  if (!/^[A-Za-z0-9_.-]+$/.test(resolved.runtime)) invalid('runtime must match [A-Za-z0-9_.-]+');
  if (!/^[A-Za-z0-9_.-]+$/.test(resolved.workerId)) invalid('workerId must match [A-Za-z0-9_.-]+');
  if (!/^[A-Za-z0-9_.-]+$/.test(resolved.namespace))
    invalid('namespace must match [A-Za-z0-9_.-]+');
  for (const key of [
    'homeBytes',
    'scratchBytes',
    'maxAgeMs',
    'transferTimeoutMs',
    'readyTimeoutMs',
  ] as const) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] <= 0)
      invalid(`${key} must be a positive integer`);
  }
  for (const key of ['warmPoolSize', 'warmPoolPreloads', 'reaperIntervalMs'] as const) {
    if (!Number.isSafeInteger(resolved[key]) || resolved[key] < 0)
      invalid(`${key} must be a whole number`);
  }
  return resolved;
}

/**
 * The provider options a deployment's config implies; the caller adds the Docker client and,
 * from the queue layer, `isInUse`.
 */
export function sandboxOptionsFromConfig(
  config: Pick<Config, 'sandbox' | 'worker' | 'redis'>,
): Omit<DockerSandboxProviderOptions, 'docker'> {
  const s = config.sandbox;
  return {
    workerId: config.worker.id,
    namespace: config.redis.prefix,
    limits: {
      memoryBytes: s.memoryBytes,
      cpus: s.cpus,
      pids: s.pids,
      nofile: s.nofile,
      fsizeBytes: s.fsizeBytes,
      workspaceBytes: s.workspaceBytes,
      tmpBytes: s.tmpBytes,
    },
    homeBytes: s.homeBytes,
    warmPoolSize: s.warmPoolSize,
    warmPoolImages: [s.image],
    warmPoolPreloads: s.warmPoolPreloads,
    reaperIntervalMs: s.reaperIntervalMs,
    maxAgeMs: s.maxAgeMs,
    runtime: s.runtime,
  };
}
