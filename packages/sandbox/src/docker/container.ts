import type Docker from 'dockerode';
import type { ResolvedProviderOptions } from './options.js';
import type { SandboxLimits, SandboxNetwork } from '../types.js';

/** Labels on every container (and volume) the driver makes; the reaper's only source of truth. */
export const LABELS = {
  managed: 'patchbay.managed',
  namespace: 'patchbay.namespace',
  task: 'patchbay.task',
  worker: 'patchbay.worker',
  createdAt: 'patchbay.created-at',
  /**
   * Set on warm-pool containers, whose task label is empty: they were made before any task.
   * A label cannot change once a container exists, so a task that takes one renames it to
   * `patchbay-<task>-…`: `docker ps` shows which task holds it.
   */
  pool: 'patchbay.pool',
} as const;

/**
 * Names of the containers this process made and has not yet removed, across all providers in
 * it. A name is added *before* the container is created, so the reaper can never see one of
 * ours in the gap between the engine creating it and us learning its id.
 */
export const liveContainerNames = new Set<string>();

export interface ContainerPlan {
  name: string;
  image: string;
  /** Empty for a warm-pool container. */
  taskId: string;
  pooled: boolean;
  limits: SandboxLimits;
  network: SandboxNetwork;
  extraLabels: Record<string, string> | undefined;
}

function tmpfs(size: number, mode: string, owner?: { uid: number; gid: number }): string {
  // Docker's tmpfs default is noexec; builds and test runners need to execute from /tmp and
  // /workspace. nosuid/nodev stay: nothing there may gain privileges.
  const ids = owner === undefined ? '' : `,uid=${owner.uid},gid=${owner.gid}`;
  return `rw,exec,nosuid,nodev,size=${size},mode=${mode}${ids}`;
}

/** Host pids per sandbox process under gVisor's ptrace platform (see the PidsLimit below). */
const GVISOR_HOST_PIDS_PER_PROCESS = 16;

/**
 * gVisor's runtime (`runsc`, or a name for it with other flags): a kernel of its own between the
 * sandbox and the host's, whose threads share the container's cgroups.
 */
export function isGvisor(runtime: string): boolean {
  return runtime.startsWith('runsc');
}

/**
 * The hardened container: no capabilities, no privilege gain, the default seccomp profile
 * (the engine applies it unless told otherwise), a non-root user, a read-only root with only
 * size-capped tmpfs writable, cgroup limits, no network unless asked, no host mounts, no
 * Docker socket, no logs on the host. The exec server is the main process, under docker-init,
 * with stdin open so the worker can attach to it.
 */
export function containerCreateOptions(
  plan: ContainerPlan,
  o: ResolvedProviderOptions,
  createdAt: Date,
): Docker.ContainerCreateOptions {
  const { limits, network } = plan;
  const owner = { uid: o.user.uid, gid: o.user.gid };
  const gvisor = isGvisor(o.runtime);
  const hostConfig: Docker.HostConfig = {
    CapDrop: ['ALL'],
    CapAdd: [],
    Privileged: false,
    SecurityOpt: ['no-new-privileges:true'],
    ReadonlyRootfs: true,
    Init: true,
    Memory: limits.memoryBytes,
    // Equal to Memory: no swap, so the memory limit is the real one.
    MemorySwap: limits.memoryBytes,
    NanoCpus: Math.round(limits.cpus * 1e9),
    // Under gVisor the host's pids cgroup also holds gVisor's own kernel: its threads, and
    // (ptrace platform) about eleven host threads per sandbox process, measured here. The
    // sandbox's own limit is then gVisor's RLIMIT_NPROC, which its kernel enforces on the
    // sandbox's processes (all of the one user), and the host cgroup a backstop with room for
    // the rest: reaching it would end the whole sandbox, not one command.
    PidsLimit: gvisor ? limits.pids * GVISOR_HOST_PIDS_PER_PROCESS + 512 : limits.pids,
    Ulimits: [
      { Name: 'nofile', Soft: limits.nofile, Hard: limits.nofile },
      { Name: 'fsize', Soft: limits.fsizeBytes, Hard: limits.fsizeBytes },
      ...(gvisor ? [{ Name: 'nproc', Soft: limits.pids, Hard: limits.pids }] : []),
    ],
    Tmpfs: {
      '/workspace': tmpfs(limits.workspaceBytes, '0755', owner),
      '/tmp': tmpfs(limits.tmpBytes, '1777'),
      [o.user.home]: tmpfs(o.homeBytes, '0755', owner),
      '/run/patchbay': tmpfs(o.scratchBytes, '0700', owner),
    },
    NetworkMode: network === 'outbound' ? o.bridgeNetwork : 'none',
    IpcMode: 'private',
    Runtime: o.runtime,
    Binds: [],
    Mounts: [],
    Devices: [],
    // The exec stream goes through the attach connection; a log driver would copy every byte
    // of it (file transfers included) to the host's disk.
    LogConfig: { Type: 'none', Config: {} },
    RestartPolicy: { Name: 'no', MaximumRetryCount: 0 },
    AutoRemove: false,
    ...o.hostConfig,
  };
  return {
    name: plan.name,
    Image: plan.image,
    // As the entrypoint, so an image's own ENTRYPOINT or CMD cannot stand in for it.
    Entrypoint: [o.execServerPath],
    Cmd: [],
    User: `${o.user.uid}:${o.user.gid}`,
    WorkingDir: '/workspace',
    Env: [
      `HOME=${o.user.home}`,
      // See docker/sandbox/execd/gvisor-statx.c: `ls` and `stat` under Debian's runsc.
      ...(gvisor && o.gvisorPreload !== '' ? [`LD_PRELOAD=${o.gvisorPreload}`] : []),
    ],
    Labels: {
      ...plan.extraLabels,
      [LABELS.managed]: 'true',
      [LABELS.namespace]: o.namespace,
      [LABELS.task]: plan.taskId,
      [LABELS.worker]: o.workerId,
      [LABELS.createdAt]: createdAt.toISOString(),
      ...(plan.pooled ? { [LABELS.pool]: 'true' } : {}),
    },
    // StdinOnce: when the worker's attach connection closes (the worker died, even by
    // SIGKILL), the exec server reads EOF, kills its commands and exits, and the container
    // stops by itself; the reaper only has to remove it.
    OpenStdin: true,
    StdinOnce: true,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    NetworkDisabled: false,
    HostConfig: hostConfig,
  };
}
