import type { AgentRuntime, ReasoningEffort, TaskEventBody, Usage } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';

// These mirror the pipeline's `AgentRunner` port (packages/pipeline/src/ports.ts) structurally,
// as the agent loop's own types do: the pipeline depends on a runtime's shape, not the reverse.

export type StopReason = 'completed' | 'max_turns' | 'max_tokens' | 'timeout';

export interface RuntimeRunInput {
  taskId: string;
  runtime: AgentRuntime;
  sandbox: Sandbox;
  prompt: string;
  history?: readonly unknown[];
  model: { name: string; reasoningEffort: ReasoningEffort | null };
  limits: { maxTurns: number; maxTokens: number; deadline: number };
  signal: AbortSignal;
  emit: (event: TaskEventBody) => void;
}

export interface RuntimeOutcome {
  summary: string | null;
  stopReason: StopReason;
  usage: Usage;
  transcript: unknown;
  conversation: readonly unknown[];
}

/** An agent that can work on a task: Patchbay's own loop, or a CLI agent in the sandbox. */
export interface Runtime {
  run(input: RuntimeRunInput): Promise<RuntimeOutcome>;
}
