import type Docker from 'dockerode';
import { LABELS, liveContainerNames } from './container.js';
import type { ReapReason, ReapReport, ResolvedProviderOptions, SandboxOwner } from './options.js';

/**
 * A container younger than this in the `created` state may be one another worker is about to
 * start; an exited container of another worker younger than this may still be inspected by it.
 */
const YOUNG_MS = 60_000;

/**
 * Removes what crashed or stuck workers left behind. It only considers containers and volumes
 * labelled with this provider's namespace, and removes one when:
 * - it is older than `maxAgeMs`, whatever it is doing;
 * - it carries this worker's id but this process does not know it (a previous run of this
 *   worker left it);
 * - it belongs to another worker and `isInUse` says that worker or task is gone;
 * - without `isInUse`: it belongs to another worker and stopped over a minute ago (a worker's
 *   containers stop by themselves when its attach connection drops, i.e. when it dies).
 */
export class Reaper {
  readonly #o: ResolvedProviderOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<ReapReport> | undefined;

  readonly #afterPass: () => void;

  /** `afterPass` runs after every pass, whatever its outcome. */
  constructor(options: ResolvedProviderOptions, afterPass: () => void = () => {}) {
    this.#o = options;
    this.#afterPass = afterPass;
  }

  /** Runs once now, then every `reaperIntervalMs` (when positive) until {@link stop}. */
  start(): void {
    const run = (): void => {
      this.reapOnce().catch((err: unknown) =>
        this.#o.logger.warn({ err }, 'sandbox reaper pass failed'),
      );
    };
    run();
    if (this.#o.reaperIntervalMs > 0) {
      this.#timer = setInterval(run, this.#o.reaperIntervalMs);
      // The reaper alone must not keep a process alive.
      this.#timer.unref();
    }
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** One pass; concurrent calls share it. */
  reapOnce(): Promise<ReapReport> {
    this.#running ??= this.#pass().finally(() => {
      this.#running = undefined;
      this.#afterPass();
    });
    return this.#running;
  }

  async #pass(): Promise<ReapReport> {
    const { docker, namespace } = this.#o;
    const report: ReapReport = { removed: [], volumes: [] };
    const containers = await docker.listContainers({
      all: true,
      filters: { label: [`${LABELS.managed}=true`, `${LABELS.namespace}=${namespace}`] },
    });
    const now = Date.now();
    for (const info of containers) {
      const owner = ownerOf(info);
      let reason: ReapReason | undefined;
      try {
        reason = await this.#verdict(owner, now);
      } catch (err) {
        // When in doubt, keep: removing a live task's sandbox is worse than a late cleanup.
        this.#o.logger.warn({ err, container: owner.name }, 'reaper could not judge a sandbox');
        continue;
      }
      if (reason === undefined) continue;
      try {
        await docker.getContainer(info.Id).remove({ force: true, v: true });
        report.removed.push({ id: info.Id, name: owner.name, reason });
        this.#o.logger.debug({ container: owner.name, reason }, 'reaper removed a sandbox');
      } catch (err) {
        const status = (err as { statusCode?: number }).statusCode;
        if (status !== 404 && status !== 409)
          this.#o.logger.warn({ err, container: owner.name }, 'reaper could not remove a sandbox');
      }
    }
    const { Volumes } = await docker.listVolumes({
      filters: { label: [`${LABELS.managed}=true`, `${LABELS.namespace}=${namespace}`] },
    });
    for (const volume of Volumes ?? []) {
      const created = Date.parse(
        volume.Labels?.[LABELS.createdAt] ?? (volume as { CreatedAt?: string }).CreatedAt ?? '',
      );
      if (Number.isFinite(created) && now - created < YOUNG_MS) continue;
      try {
        // The engine refuses to remove a volume a container still uses: that is the check.
        await docker.getVolume(volume.Name).remove();
        report.volumes.push(volume.Name);
      } catch {
        // In use, or gone.
      }
    }
    return report;
  }

  async #verdict(owner: SandboxOwner, now: number): Promise<ReapReason | undefined> {
    const age = now - owner.createdAt.getTime();
    if (age > this.#o.maxAgeMs) return 'max-age';
    if (owner.workerId === this.#o.workerId) {
      return liveContainerNames.has(owner.name) ? undefined : 'orphan-of-this-worker';
    }
    // A container being created right now is not started yet: leave it to its worker.
    if (owner.state === 'created' && age < YOUNG_MS) return undefined;
    if (this.#o.isInUse !== undefined) {
      return (await this.#o.isInUse(owner)) ? undefined : 'owner-gone';
    }
    if (owner.state === 'created') return 'stopped';
    if (owner.state !== 'running' && owner.state !== 'paused' && owner.state !== 'restarting') {
      // Without word from the queue layer, a stopped container is one whose worker died (its
      // attach connection dropped) or one its live worker is about to remove: give that
      // worker a minute.
      const info = await this.#o.docker.getContainer(owner.containerId).inspect();
      const finished = Date.parse(info.State.FinishedAt);
      return Number.isFinite(finished) && now - finished < YOUNG_MS ? undefined : 'stopped';
    }
    return undefined;
  }
}

function ownerOf(info: Docker.ContainerInfo): SandboxOwner {
  const labels = info.Labels;
  const created = Date.parse(labels[LABELS.createdAt] ?? '');
  const task = labels[LABELS.task];
  return {
    containerId: info.Id,
    name: (info.Names[0] ?? info.Id).replace(/^\//, ''),
    workerId: labels[LABELS.worker] ?? '',
    taskId: task === undefined || task === '' ? undefined : task,
    createdAt: new Date(Number.isFinite(created) ? created : info.Created * 1000),
    state: info.State,
  };
}
