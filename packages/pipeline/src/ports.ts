import type { AgentRuntime, ReasoningEffort, TaskEventBody, Usage } from '@patchbay/core';
import type { Sandbox, SandboxService } from '@patchbay/sandbox';

/** Where a task's repository comes from: policy, mirror and the tree at a commit. */
export interface RepoSource {
  /** Resolves `ref` (the default branch when null) to a full commit sha, fetching as needed. */
  resolve(url: string, ref: string | null, signal: AbortSignal): Promise<string>;
  /**
   * Makes a directory of the sandbox (/workspace unless `path` says otherwise) a git repository
   * whose HEAD is `sha`, with a clean status.
   */
  checkout(
    sandbox: Sandbox,
    url: string,
    sha: string,
    signal: AbortSignal,
    path?: string,
  ): Promise<void>;
}

/** Why the agent stopped. Every reason but `completed` means a budget ran out. */
export type AgentStopReason = 'completed' | 'max_turns' | 'max_tokens' | 'timeout';

export interface AgentRunInput {
  /** The task the run is for (what a runtime's model gateway token is granted to). */
  taskId: string;
  /** Which agent runs: Patchbay's own loop, or a CLI agent in the sandbox. */
  runtime: AgentRuntime;
  sandbox: Sandbox;
  /** This turn's prompt. */
  prompt: string;
  /** The conversation an earlier turn left ({@link AgentOutcome.conversation}), from turn 2 on. */
  history?: readonly unknown[];
  model: { name: string; reasoningEffort: ReasoningEffort | null };
  limits: { maxTurns: number; maxTokens: number; deadline: number };
  signal: AbortSignal;
  /** Every step of the loop, as an event. */
  emit: (event: TaskEventBody) => void;
}

export interface AgentOutcome {
  /** The agent's final message. */
  summary: string | null;
  stopReason: AgentStopReason;
  usage: Usage;
  /** The whole run, for the artifact store. */
  transcript: unknown;
  /** The conversation as the model last saw it, its reply included: the next turn's context. */
  conversation: readonly unknown[];
}

/** The agent loop as the pipeline needs it. */
export interface AgentRunner {
  run(input: AgentRunInput): Promise<AgentOutcome>;
}

/** What a refused egress attempt says (a `network.blocked` event). */
export interface EgressBlock {
  host: string;
  port: number;
  reason: 'not_allowed' | 'private_address' | 'unresolved' | 'unknown_client';
}

/** The egress proxy of allowlist networks, as the agent phase uses it. */
export interface EgressAccess {
  open(): Promise<{
    /**
     * One sandbox's way to the proxy: a service it reaches (see `Sandbox.reach`), whose
     * connections are known as this client's until released.
     */
    admit(client: {
      taskId: string;
      domains: readonly string[];
      onBlocked: (b: EgressBlock) => void;
    }): { service: SandboxService; release(): void };
  }>;
}
