import type { TaskEventBody, Usage } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
import type { ConversationItem, ReasoningEffort, ToolDefinition } from '../model/index.js';

// These mirror the pipeline's `AgentRunner` port (packages/pipeline/src/ports.ts) structurally:
// the pipeline depends on the agent's shape, never the agent on the pipeline.

/** Why a run stopped. Every reason but `completed` means a budget ran out. */
export type AgentStopReason = 'completed' | 'max_turns' | 'max_tokens' | 'timeout';

/** One task's run of the agent. */
export interface AgentRunInput {
  /** The sandbox with the repository at /workspace. */
  sandbox: Sandbox;
  /** This turn's prompt, as the user wrote it. */
  prompt: string;
  /**
   * The conversation an earlier turn of the task left ({@link AgentOutcome.conversation}): the
   * context this turn goes on from. Items that are not conversation items are left out.
   */
  history?: readonly unknown[];
  /** Model for this task; `reasoningEffort` null leaves it to the server. */
  model: { name: string; reasoningEffort: ReasoningEffort | null };
  limits: {
    /** Most model turns (compaction calls do not count). */
    maxTurns: number;
    /** Most tokens, input plus output over every model call of the run. */
    maxTokens: number;
    /** Wall-clock deadline, epoch milliseconds. */
    deadline: number;
  };
  /** Aborting cancels the model call or command in flight; the run then rejects. */
  signal: AbortSignal;
  /** Receives every step as a task event. */
  emit: (event: TaskEventBody) => void;
}

/** How a run ended (it rejects only on cancellation, model errors and sandbox failures). */
export interface AgentOutcome {
  /** The final assistant message (for a budget stop, the last one written), if any. */
  summary: string | null;
  stopReason: AgentStopReason;
  usage: Usage;
  transcript: AgentTranscript;
  /**
   * The conversation as the model last saw it (compacted as it was), its last reply included and
   * AGENTS.md left out (the next turn reads it afresh): what a follow-up turn goes on from.
   */
  conversation: ConversationItem[];
}

/** The whole run as the artifact store keeps it. */
export interface AgentTranscript {
  version: 1;
  model: string;
  instructions: string;
  tools: readonly ToolDefinition[];
  /**
   * Every item in the order it arose, including those later compacted away; each compaction's
   * summary message is in it too, where it was made.
   */
  items: ConversationItem[];
  /** Compactions: the index in `items` of the summary message, and how many items it replaced. */
  compactions: { atItem: number; summarizedItems: number }[];
  /** AGENTS.md files that were read, root first. */
  agentsMd: string[];
  stopReason: AgentStopReason;
}
