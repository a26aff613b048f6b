import type { Duplex, Readable } from 'node:stream';

/** Resource limits of one sandbox. Operator defaults come from config; a task cannot raise them. */
export interface SandboxLimits {
  /** Memory limit in bytes; swap is set equal, so there is no swap. */
  memoryBytes: number;
  /** CPUs (fractions allowed), enforced as NanoCpus. */
  cpus: number;
  /** Most processes at once (PidsLimit). */
  pids: number;
  /** Open-file limit (nofile ulimit). */
  nofile: number;
  /** Largest file a process may write (fsize ulimit). */
  fsizeBytes: number;
  /** Size cap of /workspace. */
  workspaceBytes: number;
  /** Size cap of /tmp. */
  tmpBytes: number;
}

export type SandboxNetwork = 'none' | 'outbound';

export interface SandboxSpec {
  /** Image to run; it must carry the exec server (see docker/sandbox). */
  image: string;
  /** Task this sandbox serves, recorded in its labels (the reaper's key). */
  taskId: string;
  /** Extra labels on the container and its volumes. */
  labels?: Record<string, string>;
  /** Environment of every command run in the sandbox. */
  env?: Record<string, string>;
  /**
   * What the sandbox may reach. `none`: nothing but its own loopback. `outbound`: the outside
   * network, for the setup phase (and an agent phase the operator allows it for); it can be taken
   * away later with {@link Sandbox.disableNetwork}. How a provider gives it is its own business.
   * @default 'none'
   */
  network?: SandboxNetwork;
  /** Limits below the operator's defaults; a field above its default is clamped to it. */
  limits?: Partial<SandboxLimits>;
  /**
   * What a pooled sandbox may hold for this spec before it is taken. A sandbox the pool
   * prepared under the same key is handed out first (see {@link Sandbox.preloaded}), and the
   * pool prepares the next one with this spec's `prepare`.
   */
  preload?: SandboxPreload;
}

/**
 * Data put into a pooled sandbox before any task takes it (a repository's checkout, say), so that
 * the next task of the same kind finds it in place. Sandboxes prepared under one key are handed
 * out only to specs with that key, so the key must name whose data it is (a tenant and a
 * repository, not the repository alone).
 */
export interface SandboxPreload {
  key: string;
  /** Fills a fresh, idle sandbox; resolves with what it put there ({@link Sandbox.preloaded}). */
  prepare(sandbox: Sandbox, signal: AbortSignal): Promise<string>;
}

export interface ExecOptions {
  /** Working directory inside the sandbox. @default '/workspace' */
  cwd?: string;
  /** Variables added to the sandbox environment for this command only. */
  env?: Record<string, string>;
  /** Bytes written to the command's standard input, which is then closed. @default none (closed at once) */
  stdin?: Buffer | string;
  /** Kill the command's whole process tree after this long. @default 120_000 */
  timeoutMs?: number;
  /** Most output bytes kept: the head and the tail of it, with the middle counted. @default 1 MiB */
  maxOutputBytes?: number;
  /** Aborting kills the command's whole process tree. */
  signal?: AbortSignal;
  /** Called with output as it arrives (only the kept part: head, then tail at the end). */
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

export interface ExecResult {
  /** The command's exit code; null when it was killed by a signal. */
  exitCode: number | null;
  /** The signal that ended the command, e.g. `SIGKILL`. */
  signal: string | null;
  /** stdout and stderr interleaved as they arrived, head + tail when over the cap. */
  output: Buffer;
  /** Bytes left out of `output` (between head and tail). */
  droppedBytes: number;
  /**
   * Length of the head part of `output`: the dropped bytes sat between `output[0, headBytes)`
   * and the rest, so a truncation marker goes there. Absent when a driver cannot tell.
   */
  headBytes?: number;
  /** Wall time from start to exit, in milliseconds. */
  durationMs: number;
  /** The command ran past its timeout and was killed. */
  timedOut: boolean;
  /** The command was killed because its AbortSignal fired. */
  aborted: boolean;
  /** The kernel's OOM killer ended the command (or the container). */
  oomKilled: boolean;
}

export interface Sandbox {
  /** The container's id. */
  readonly id: string;
  /** The spec it was made from. */
  readonly spec: Readonly<SandboxSpec>;
  /** True once the exec channel died; every later call rejects with a SandboxError. */
  readonly broken: boolean;
  /**
   * What the pool put into this sandbox before a task took it (the result of
   * {@link SandboxPreload.prepare}); undefined for a sandbox that holds nothing yet.
   */
  readonly preloaded?: string | undefined;
  /**
   * Runs a command: an argv array, or a string run with `bash -lc`. A timeout or an abort kills
   * every process the command started. Otherwise the command is over when its own process has
   * exited (and its output closed, or 200 ms later): processes it left in the background (a dev
   * server started with `&`) keep running, and what they print afterwards is discarded.
   */
  exec(command: string | readonly string[], options?: ExecOptions): Promise<ExecResult>;
  /** Reads one file (binary-safe); rejects past `maxBytes` (default 16 MiB). */
  readFile(path: string, options?: { maxBytes?: number; signal?: AbortSignal }): Promise<Buffer>;
  /** Writes one file, creating parent directories. */
  writeFile(
    path: string,
    data: Buffer | string,
    options?: { mode?: number; signal?: AbortSignal },
  ): Promise<void>;
  /**
   * Extracts a tar stream into a directory (default /workspace); with `keepExisting`, files
   * already there are left as they are (the archive only adds); `gzip`: the stream is a .tar.gz,
   * decompressed inside (fewer bytes over the channel).
   */
  putArchive(
    tar: Readable,
    options?: { path?: string; signal?: AbortSignal; keepExisting?: boolean; gzip?: boolean },
  ): Promise<void>;
  /** A path (file or directory) as a tar stream. */
  getArchive(path: string, options?: { signal?: AbortSignal }): Promise<Readable>;
  /**
   * Kills every process of the sandbox but its own exec server: running commands and whatever
   * they left behind (a dev server, a runaway job, a fork bomb filling the process limit). Run
   * before the worker collects or verifies, so that how the agent left the container cannot
   * stop it. Rejects with `sandbox_error` when a process would not die.
   */
  quiesce(options?: { timeoutMs?: number }): Promise<{ killed: number }>;
  /** Takes the network away (after the setup phase): only loopback is left. */
  disableNetwork(): Promise<void>;
  /**
   * Makes a service of the worker's reachable from inside the sandbox at a loopback URL, until
   * released: whatever the engine, the sandbox gets no route anywhere, only a port whose
   * connections the worker carries to `service` (and knows to come from this sandbox).
   */
  reach(service: SandboxService, options?: { signal?: AbortSignal }): Promise<Reach>;
  /** Variables added to the environment of every later command (a proxy, say). */
  addEnv(vars: Record<string, string>): void;
  /** Removes the container and its volumes. Idempotent; never throws for an already-gone one. */
  destroy(): Promise<void>;
}

/** A service of the worker's that sandboxes may be given a way to (the model gateway, say). */
export interface SandboxService {
  /** For logs and errors. */
  readonly name: string;
  /**
   * A new connection to the service, for each one a sandbox opens; half-open allowed (the
   * sandbox may end its side and still read), as `net.connect({ allowHalfOpen: true })` makes.
   */
  connect(): Duplex;
}

/** A service as one sandbox reaches it. */
export interface Reach {
  /** `http://127.0.0.1:<port>`, inside the sandbox. */
  url: string;
  /** Closes the way in and every connection through it. Idempotent. */
  release(): Promise<void>;
}

export interface SandboxProvider {
  /**
   * Resolves when the backend answers; rejects with an error that says which backend and what
   * stands in the way (a worker checks this before it takes tasks).
   */
  ready(): Promise<void>;
  /**
   * What an image is to the engine (its content id), so that caches keyed by image follow a
   * rebuilt tag. Rejects when the engine does not have it.
   */
  imageId(image: string): Promise<string>;
  /** A ready sandbox: from the warm pool when one matches, else a new container. */
  create(spec: SandboxSpec, options?: { signal?: AbortSignal }): Promise<Sandbox>;
  /** Sandboxes of this provider (this worker) running now, pooled ones included. */
  running(): Promise<number>;
  /** Stops the pool and the reaper and destroys pooled sandboxes. Idempotent. */
  close(): Promise<void>;
}
