import { createHash } from 'node:crypto';
import {
  type Integration,
  type Logger,
  PatchbayError,
  TaskSpec,
  isPatchbayError,
  silentLogger,
} from '@patchbay/core';
import type { TaskService } from '@patchbay/tasks';
import type { Redis } from 'ioredis';
import {
  type ForgeFor,
  type ForgeName,
  type Mention,
  type Parsed,
  parseGitHub,
  parseGitLab,
  parseGitea,
} from './payloads.js';
import { type Headers, deliveryOf, isSigned } from './signatures.js';

/**
 * How long after a comment its delivery is still taken. GitHub lets a delivery be sent again for
 * three days; a signed payload replayed after that is refused for its age, and before that its
 * delivery id is still on record.
 */
const REPLAY_WINDOW_MS = 3 * 86_400_000 + 3_600_000;
/** Delivery ids are kept longer than the window, so no replay falls between the two. */
const DELIVERY_ID_SECONDS = 4 * 86_400;
/** Of an issue's text, what goes into the prompt. */
const ISSUE_BODY_BYTES = 24 * 1024;

export type IntakeOutcome =
  | { outcome: 'started'; taskId: string }
  | { outcome: 'followed_up'; taskId: string; turn: number }
  | { outcome: 'duplicate' }
  | { outcome: 'ignored'; reason: string };

export interface IntakeDeps {
  integrations: readonly Integration[];
  tasks: TaskService;
  /** Keeps the delivery ids seen. */
  redis: Redis;
  prefix: string;
  forgeFor: ForgeFor;
  now?: () => Date;
}

const PARSERS: Record<ForgeName, (event: string, payload: unknown) => Parsed> = {
  github: parseGitHub,
  gitlab: parseGitLab,
  gitea: parseGitea,
};

/**
 * Takes forge webhooks: a comment that mentions Patchbay on an issue starts a task on that
 * repository (delivered as a pull request when it succeeds); on a pull request Patchbay opened,
 * it is a follow-up turn that lands on the same branch; an issue assigned to Patchbay's account
 * starts a task too. The delivery must be signed with an integration's secret, is taken once
 * (its id is kept), and only from the repositories and the people the integration allows:
 * anything else is ignored, with the reason logged and answered.
 */
export class MentionIntake {
  readonly #d: IntakeDeps;
  readonly #now: () => Date;

  constructor(deps: IntakeDeps) {
    this.#d = deps;
    this.#now = deps.now ?? (() => new Date());
  }

  /** The forges some integration is set up for. */
  forges(): ForgeName[] {
    return [...new Set(this.#d.integrations.map((i) => i.forge))];
  }

  /** Takes one delivery; `log` is the request's (what was ignored, and why, is logged there). */
  async receive(
    forge: ForgeName,
    headers: Headers,
    body: string,
    log: Logger = silentLogger,
  ): Promise<IntakeOutcome> {
    const candidates = this.#d.integrations.filter((i) => i.forge === forge);
    if (candidates.length === 0)
      throw new PatchbayError('not_found', `no ${forge} integration is set up on this server`);
    const signedBy: Integration[] = [];
    for (const candidate of candidates)
      if (await isSigned(candidate, headers, body)) signedBy.push(candidate);
    if (signedBy.length === 0)
      throw new PatchbayError(
        'unauthorized',
        `the delivery is not signed with a ${forge} integration's secret`,
      );
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      throw new PatchbayError('validation_error', 'the delivery is not JSON');
    }
    const delivery = deliveryOf(forge, headers, body);
    const parsed = (() => {
      try {
        return PARSERS[forge](delivery.event, payload);
      } catch {
        throw new PatchbayError(
          'validation_error',
          `the ${delivery.event} payload is not shaped as ${forge} sends it`,
        );
      }
    })();
    const facts = { forge, event: delivery.event, delivery: delivery.id };
    const ignore = (reason: string): IntakeOutcome => {
      log.info({ ...facts, reason }, 'delivery ignored');
      return { outcome: 'ignored', reason };
    };
    if ('ignored' in parsed) return ignore(parsed.ignored);
    const mention = parsed.mention;
    const age = this.#now().getTime() - Date.parse(mention.at);
    if (!(age < REPLAY_WINDOW_MS)) return ignore('outside_replay_window');
    // The integration whose repositories hold it: its tenant owns what it starts.
    const integration = signedBy.find((i) => allowsRepo(i, mention.repo.path));
    if (integration === undefined) return ignore('repository_not_allowed');
    const request = requestOf(integration, mention);
    if (request === null)
      return ignore(mention.kind === 'comment' ? 'no_mention' : 'not_assigned_to_patchbay');
    const refusal = refusalOf(integration, mention);
    if (refusal !== null) return ignore(refusal);

    const key = `${this.#d.prefix}:integrations:delivery:${forge}:${createHash('sha256').update(delivery.id).digest('hex')}`;
    const fresh = await this.#d.redis.set(key, '1', 'EX', DELIVERY_ID_SECONDS, 'NX');
    if (fresh === null) {
      log.info(facts, 'a delivery seen before: nothing starts again');
      return { outcome: 'duplicate' };
    }
    try {
      const outcome = mention.thread.pullRequest
        ? await this.#followUp(integration, mention, request)
        : await this.#start(integration, mention, request);
      const taken = outcome.outcome !== 'ignored';
      log.info(
        { ...facts, tenant: integration.tenant, ...outcome },
        taken ? 'mention taken' : 'delivery ignored',
      );
      return outcome;
    } catch (err) {
      // Nothing started: a redelivery may try again.
      await this.#d.redis.del(key).catch(() => undefined);
      throw err;
    }
  }

  async #start(
    integration: Integration,
    mention: Mention,
    request: string,
  ): Promise<IntakeOutcome> {
    const { tenant, task } = integration;
    const issue = mention.thread;
    const body = cut(issue.body.trim(), ISSUE_BODY_BYTES);
    const prompt = [
      request,
      '',
      `This comes from issue #${issue.number} of ${mention.repo.path}: ${issue.title}`,
      ...(body === '' ? [] : ['', body]),
    ].join('\n');
    const spec = TaskSpec.parse({
      repo: { url: mention.repo.cloneUrl },
      prompt,
      ...(task.setup || task.verify
        ? {
            environment: {
              ...(task.setup ? { setup: task.setup } : {}),
              ...(task.verify ? { verify: task.verify } : {}),
            },
          }
        : {}),
      delivery: {
        pullRequest: {
          title: cut(issue.title, 200),
          body: `Closes #${issue.number}. Asked by @${mention.author.login}: ${mention.url}`,
          draft: task.draft ?? false,
        },
      },
    });
    const { task: started } = await this.#d.tasks.submit(tenant, spec, {
      origin: {
        kind: 'mention',
        mention: {
          forge: mention.forge,
          repo: mention.repo.path,
          number: issue.number,
          pullRequest: false,
          url: mention.url,
          author: mention.author.login,
        },
      },
    });
    return { outcome: 'started', taskId: started.id };
  }

  /** A mention on a pull request Patchbay opened: the request is that task's next turn. */
  async #followUp(
    integration: Integration,
    mention: Mention,
    request: string,
  ): Promise<IntakeOutcome> {
    const forge = await this.#d.forgeFor(mention.repo.cloneUrl, mention.forge);
    let branch = mention.branch;
    if (branch === null) {
      if (forge === null) return { outcome: 'ignored', reason: 'no_forge_api' };
      try {
        branch = await forge.pullRequestBranch(mention.repo.path, mention.thread.number);
      } catch (err) {
        if (isPatchbayError(err) && err.details?.status === 404)
          return { outcome: 'ignored', reason: 'not_a_patchbay_pull_request' };
        throw err;
      }
    }
    const id = /^patchbay\/([0-9a-f-]{36})$/.exec(branch)?.[1];
    const task =
      id === undefined ? null : await this.#d.tasks.get(integration.tenant, id).catch(() => null);
    if (
      task === null ||
      task.delivery?.branch !== branch ||
      task.delivery.pullRequest?.number !== mention.thread.number ||
      !task.delivery.auto
    )
      return { outcome: 'ignored', reason: 'not_a_patchbay_pull_request' };
    try {
      const reopened = await this.#d.tasks.followUp(integration.tenant, task.id, request);
      return { outcome: 'followed_up', taskId: task.id, turn: reopened.turn };
    } catch (err) {
      if (!isPatchbayError(err) || err.code !== 'conflict') throw err;
      // Still at work (or cancelled): said on the thread, since the asker waits there.
      await forge
        ?.comment(
          { repo: mention.repo.path, number: mention.thread.number, pullRequest: true },
          `Patchbay cannot take this now: ${err.message}.`,
        )
        .catch(() => undefined);
      return { outcome: 'ignored', reason: 'task_busy' };
    }
  }
}

function allowsRepo(integration: Integration, path: string): boolean {
  const wanted = path.toLowerCase();
  return integration.repos.some((pattern) => {
    const p = pattern.toLowerCase();
    return p.endsWith('/*') ? wanted.startsWith(p.slice(0, -1)) : p === wanted;
  });
}

/**
 * What the mention asks: the comment's text without the mention (the issue itself when nothing
 * else is said), or for an assignment to Patchbay's account, the issue. Null: not for Patchbay.
 */
function requestOf(integration: Integration, mention: Mention): string | null {
  if (mention.kind === 'assignment') {
    const login = integration.login?.toLowerCase();
    return login !== undefined && mention.assignees.some((a) => a.toLowerCase() === login)
      ? 'Resolve this issue.'
      : null;
  }
  const handle = integration.mention.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const at = new RegExp(`(^|[^\\w@/.-])${handle}(?![\\w-])`, 'i');
  if (!at.test(mention.text)) return null;
  const rest = mention.text.replace(new RegExp(at.source, 'gi'), '$1').trim();
  return rest === '' ? 'Resolve this issue.' : rest;
}

/** Why this author may not start work here, or null when they may. */
function refusalOf(integration: Integration, mention: Mention): string | null {
  const login = mention.author.login.toLowerCase();
  if (mention.author.bot || login === integration.login?.toLowerCase()) return 'author_is_a_bot';
  if (integration.users.some((u) => u.toLowerCase() === login)) return null;
  const association = mention.author.association;
  if (association === null) return 'author_not_listed';
  return (integration.associations as readonly string[]).includes(association)
    ? null
    : `association_${association.toLowerCase()}`;
}

/** At most `bytes` of UTF-8, cut at a character. */
function cut(text: string, bytes: number): string {
  const buffer = Buffer.from(text);
  if (buffer.length <= bytes) return text;
  return `${buffer
    .subarray(0, bytes)
    .toString()
    .replace(/\uFFFD$/, '')}…`;
}
