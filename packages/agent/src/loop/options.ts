import path from 'node:path';
import { EVENT_TEXT_LIMIT } from '@patchbay/core';
import type { ModelClient, ReasoningSummary } from '../model/index.js';
import { SYSTEM_PROMPT } from '../prompts/system.js';
import { WORKSPACE } from '../tools/workspace.js';

/** How the agent is built: the model client and the limits every run shares. */
export interface AgentOptions {
  /** The model client (see `createModelClient`); the run's model name is chosen per task. */
  model: ModelClient;
  /**
   * Context window of the model, in tokens. Compaction keeps the input below
   * `contextWindowTokens × compactThreshold`.
   * @default 200_000
   */
  contextWindowTokens?: number | undefined;
  /**
   * Fraction of the context window at which older turns are compacted into a summary, measured
   * from the input tokens the last turn reported (estimated from its size when the server
   * reports none) plus what was added since.
   * @default 0.8
   */
  compactThreshold?: number | undefined;
  /**
   * Tokens of the most recent turns kept verbatim after a compaction (at least the latest turn
   * is always kept).
   * @default 20% of contextWindowTokens
   */
  compactKeepRecentTokens?: number | undefined;
  /**
   * Timeout of a command whose call names none.
   * @default 600_000 (10 minutes)
   */
  defaultCommandTimeoutMs?: number | undefined;
  /**
   * Longest timeout a command may ask for. Every command is also cut off at the run's deadline.
   * @default 1_800_000 (30 minutes)
   */
  maxCommandTimeoutMs?: number | undefined;
  /**
   * Output bytes of one tool call that the model reads: the first and last half of it, with a
   * marker stating how much was left out. Small enough that a noisy command does not flood the
   * context, large enough for a failing test's report.
   * @default 10_240
   */
  modelOutputBytes?: number | undefined;
  /**
   * Output bytes of one command kept for its `tool_output` event (head and tail); also the most
   * a command may send back from the sandbox.
   * @default EVENT_TEXT_LIMIT (64 KiB) less room for the omission marker
   */
  eventOutputBytes?: number | undefined;
  /**
   * Most bytes of the repository's AGENTS.md files put in front of the task, all together.
   * @default 32_768
   */
  agentsMdMaxBytes?: number | undefined;
  /**
   * Reasoning summaries to ask for (Responses wire). Models that do not reason reject the
   * parameter, so it is off unless configured.
   * @default unset
   */
  reasoningSummary?: ReasoningSummary | undefined;
  /**
   * Cap on the output tokens of one model call.
   * @default unset: the server's limit
   */
  maxOutputTokens?: number | undefined;
  /**
   * Where the repository is in the sandbox. Tools work below it; the prompts name /workspace.
   * @default '/workspace'
   */
  workspace?: string | undefined;
  /**
   * The system prompt (benchmarks compare prompts this way).
   * @default SYSTEM_PROMPT
   */
  systemPrompt?: string | undefined;
}

/** {@link AgentOptions} with every default applied and checked. */
export interface ResolvedAgentOptions {
  model: ModelClient;
  contextWindowTokens: number;
  compactThreshold: number;
  compactKeepRecentTokens: number;
  defaultCommandTimeoutMs: number;
  maxCommandTimeoutMs: number;
  modelOutputBytes: number;
  eventOutputBytes: number;
  agentsMdMaxBytes: number;
  reasoningSummary: ReasoningSummary | undefined;
  maxOutputTokens: number | undefined;
  workspace: string;
  systemPrompt: string;
}

/** Room left in an event's text for the omission marker the output gets. */
const MARKER_ROOM = 128;

/** Turns {@link AgentOptions} into resolved ones: the one place defaults live. */
export function resolveAgentOptions(options: AgentOptions): ResolvedAgentOptions {
  const contextWindowTokens = positive(
    'contextWindowTokens',
    options.contextWindowTokens ?? 200_000,
  );
  const compactThreshold = options.compactThreshold ?? 0.8;
  if (!(compactThreshold > 0 && compactThreshold <= 1)) {
    throw new RangeError(`compactThreshold must be in (0, 1], got ${compactThreshold}`);
  }
  const defaultCommandTimeoutMs = positive(
    'defaultCommandTimeoutMs',
    options.defaultCommandTimeoutMs ?? 600_000,
  );
  const maxCommandTimeoutMs = positive(
    'maxCommandTimeoutMs',
    options.maxCommandTimeoutMs ?? 1_800_000,
  );
  if (defaultCommandTimeoutMs > maxCommandTimeoutMs) {
    throw new RangeError(
      `defaultCommandTimeoutMs (${defaultCommandTimeoutMs}) exceeds maxCommandTimeoutMs (${maxCommandTimeoutMs})`,
    );
  }
  const eventOutputBytes = positive(
    'eventOutputBytes',
    options.eventOutputBytes ?? EVENT_TEXT_LIMIT - MARKER_ROOM,
  );
  const modelOutputBytes = positive('modelOutputBytes', options.modelOutputBytes ?? 10 * 1024);
  if (modelOutputBytes > eventOutputBytes) {
    throw new RangeError(
      `modelOutputBytes (${modelOutputBytes}) exceeds eventOutputBytes (${eventOutputBytes})`,
    );
  }
  const workspace = options.workspace ?? WORKSPACE;
  if (!workspace.startsWith('/'))
    throw new RangeError(`workspace must be an absolute path, got ${workspace}`);
  return {
    model: options.model,
    contextWindowTokens,
    compactThreshold,
    compactKeepRecentTokens: positive(
      'compactKeepRecentTokens',
      options.compactKeepRecentTokens ?? Math.floor(contextWindowTokens * 0.2),
    ),
    defaultCommandTimeoutMs,
    maxCommandTimeoutMs,
    modelOutputBytes,
    eventOutputBytes,
    agentsMdMaxBytes: positive('agentsMdMaxBytes', options.agentsMdMaxBytes ?? 32 * 1024),
    reasoningSummary: options.reasoningSummary,
    maxOutputTokens:
      options.maxOutputTokens === undefined
        ? undefined
        : positive('maxOutputTokens', options.maxOutputTokens),
    workspace: path.posix.normalize(workspace).replace(/(.)\/$/, '$1'),
    systemPrompt: options.systemPrompt ?? SYSTEM_PROMPT,
  };
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0))
    throw new RangeError(`${name} must be a positive number, got ${value}`);
  return value;
}
