import {
  type Delivery,
  type ForgeConfig,
  type GitCredential,
  type Logger,
  PatchbayError,
  type Task,
  isPatchbayError,
  patchArtifactOf,
  silentLogger,
} from '@patchbay/core';
import type { PushRequest, PushResult } from '@patchbay/git';
import { readArtifact, type ArtifactStore, type TaskStore } from '@patchbay/store';
import { forHost, forgeClient, gitUsernameFor, repoPathOf } from './forges/index.js';

export interface DelivererDeps {
  store: TaskStore;
  artifacts: ArtifactStore;
  /** The worker's mirrors: commit and push happen there, never in a sandbox. */
  push: (url: string, request: PushRequest) => Promise<PushResult>;
  /** The operator's credential for a repository's host (a token, or a GitHub App's). */
  credentialFor: (repoUrl: string) => Promise<GitCredential | undefined>;
  forges: Record<string, ForgeConfig>;
  author: { name: string; email: string };
  /** Base URL of the API, for the link back to the task. */
  publicUrl: string;
  /** @default globalThis.fetch (forge APIs) */
  fetch?: typeof fetch;
  log?: Logger;
}

/**
 * Delivers a task's result: a commit of base + patch pushed to the delivery's branch from the
 * worker's mirror, then (when asked) a pull request through the forge's API. The record's
 * `delivery` says how it went, written with its `task.delivered` / `task.delivery_failed`
 * lifecycle event; the task's own status is never touched.
 */
export class Deliverer {
  readonly #d: DelivererDeps;
  readonly #log: Logger;

  constructor(deps: DelivererDeps) {
    this.#d = deps;
    this.#log = deps.log ?? silentLogger;
  }

  /**
   * Runs the task's pending delivery. A failure that may pass (network, a forge's 5xx) is thrown
   * while `lastTry` is false, to be run again; any other, or on the last try, is recorded.
   */
  async deliver(taskId: string, options: { lastTry: boolean }): Promise<void> {
    const task = await this.#d.store.get(taskId);
    const delivery = task?.delivery;
    if (!task || !delivery || delivery.status !== 'pending') return;
    try {
      const done = await this.#run(task, delivery);
      await this.#write(taskId, delivery, done, 'task.delivered');
      await this.#d.store.deleteDeliveryToken(taskId);
      this.#log.info({ taskId, branch: delivery.branch, commit: done.commit }, 'delivered');
    } catch (err) {
      const error = isPatchbayError(err)
        ? err
        : new PatchbayError('delivery_failed', (err as Error).message, { retryable: true });
      if (error.retryable && !options.lastTry) throw error;
      this.#log.warn({ taskId, code: error.code, message: error.message }, 'delivery failed');
      await this.#write(
        taskId,
        delivery,
        { status: 'failed', error: { code: error.code, message: error.message } },
        'task.delivery_failed',
      );
      // A token that failed is not kept for another try: a new delivery brings its own.
      await this.#d.store.deleteDeliveryToken(taskId);
    }
  }

  async #run(task: Task, delivery: Delivery): Promise<Partial<Delivery>> {
    const name = patchArtifactOf(task, delivery.turn);
    if (name === null || task.baseCommit === null)
      throw new PatchbayError('delivery_failed', 'the task has no patch to deliver');
    const patch = await readArtifact(this.#d.artifacts, task.id, name);
    if (patch === null || patch.length === 0)
      throw new PatchbayError('delivery_failed', 'the task has no patch to deliver');
    const url = new URL(task.repo.url);
    const forge = forHost(task.repo.url, this.#d.forges);
    const own = await this.#d.store.deliveryToken(task.id);
    const credential =
      own !== null ? { username: null, token: own } : await this.#d.credentialFor(task.repo.url);
    if (credential === undefined) {
      throw new PatchbayError('delivery_auth_failed', `no push credential for ${url.host}`, {
        details: { reason: 'no_credentials', host: url.host },
      });
    }
    const pushed = await this.#d.push(task.repo.url, {
      baseCommit: task.baseCommit,
      patch,
      branch: delivery.branch,
      message: delivery.request.commitMessage ?? defaultMessage(task),
      author: this.#d.author,
      auth: {
        username: credential.username ?? gitUsernameFor(forge?.kind),
        token: credential.token,
      },
      previous: delivery.commit,
      ref: task.repo.ref,
    });
    const result: Partial<Delivery> = {
      status: 'delivered',
      commit: pushed.commit,
      pushedAt: new Date().toISOString(),
      error: null,
    };
    const asked = delivery.request.pullRequest;
    if (asked === null || delivery.pullRequest !== null) return result;
    if (forge === undefined) {
      throw new PatchbayError(
        'delivery_failed',
        `no forge API is configured for ${url.host} (PATCHBAY_FORGES)`,
        {
          details: { reason: 'no_forge', host: url.host },
        },
      );
    }
    if (pushed.baseBranch === null)
      throw new PatchbayError(
        'delivery_failed',
        'the repository names no default branch to target',
      );
    const client = forgeClient(
      forge,
      credential.token,
      this.#d.fetch ? { fetch: this.#d.fetch } : {},
    );
    const pullRequest = await client.openPullRequest({
      repo: repoPathOf(task.repo.url),
      head: delivery.branch,
      base: pushed.baseBranch,
      title: asked.title ?? firstLine(task.prompt),
      body: pullRequestBody(task, asked.body, this.#d.publicUrl),
      draft: asked.draft,
    });
    return { ...result, pullRequest };
  }

  async #write(
    taskId: string,
    delivery: Delivery,
    change: Partial<Delivery>,
    lifecycle: 'task.delivered' | 'task.delivery_failed',
  ): Promise<void> {
    const written = await this.#d.store.rewriteEnded(
      taskId,
      (t) => {
        // A newer delivery asked for meanwhile is its own run's to write.
        if (t.delivery?.status !== 'pending' || t.delivery.turn !== delivery.turn) return t;
        return { ...t, delivery: { ...t.delivery, ...change } };
      },
      { lifecycle },
    );
    if (written === null)
      this.#log.warn({ taskId }, 'the task went back to work before its delivery was recorded');
  }
}

/** The prompt's first line, cut to a commit subject's length. */
function firstLine(text: string): string {
  const line = text.trim().split('\n')[0]!.trim();
  return line.length > 72 ? `${line.slice(0, 71)}…` : line;
}

function defaultMessage(task: Task): string {
  return `${firstLine(task.prompt)}\n\n${task.prompt.trim()}\n\nPatchbay-Task: ${task.id}\n`;
}

/** The body of a pull request: the asker's text, then the summary, the verdict and a link back. */
function pullRequestBody(task: Task, body: string | null, publicUrl: string): string {
  const result = task.result;
  const verify = result?.verify;
  const lines = [
    ...(body === null ? [] : [body.trim(), '']),
    '## Summary',
    '',
    result?.summary?.trim() || '(the agent left no summary)',
    '',
    '## Verify',
    '',
    verify == null
      ? 'No verify command was run.'
      : `${verify.passed ? 'Passed' : 'Failed'}: \`${verify.command}\` (exit ${verify.exitCode ?? 'none'})`,
    '',
    `Patchbay task [${task.id}](${publicUrl}/v1/tasks/${task.id}): ${result?.files.length ?? 0} files, +${result?.additions ?? 0} −${result?.deletions ?? 0}.`,
  ];
  return lines.join('\n');
}
