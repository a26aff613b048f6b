import type { TaskEventBody } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
import type { z } from 'zod';
import type { ToolDefinition } from '../model/index.js';

/** Limits every tool call runs under, resolved once per run (see `resolveAgentOptions`). */
export interface ToolLimits {
  /** Timeout of a command that names none. */
  defaultCommandTimeoutMs: number;
  /** Longest timeout a command may ask for. */
  maxCommandTimeoutMs: number;
  /** Output bytes of one call the model reads (head + tail); the rest is marked as omitted. */
  modelOutputBytes: number;
  /** Output bytes of one call kept for its `tool_output` event. */
  eventOutputBytes: number;
}

/** What a tool call can use. */
export interface ToolContext {
  sandbox: Sandbox;
  /** Absolute path of the repository in the sandbox; tools work below it (`/workspace`). */
  workspace: string;
  /** The run's signal: aborting it kills the running command. */
  signal: AbortSignal;
  /** Wall-clock deadline of the run (epoch ms); no command runs past it. */
  deadline: number;
  limits: ToolLimits;
  /** Emits a task event (the plan tool records the plan this way). */
  emit: (event: TaskEventBody) => void;
}

/** The outcome of one tool call. */
export interface ToolResult {
  /** What goes back to the model as the `function_call_output`. */
  output: string;
  /** False when the call failed (bad arguments, non-zero exit, refused patch). */
  ok: boolean;
  /** The command's exit code, for calls that ran one; null when a signal ended it. */
  exitCode?: number | null;
  durationMs: number;
  /** The fuller output for the `tool_output` event. @default output */
  eventOutput?: string;
  /** Bytes of the original output left out of `eventOutput`. */
  eventDroppedBytes?: number;
}

/** A function tool: its definition for the model, its argument schema and its implementation. */
export interface Tool<Args = unknown> {
  readonly definition: ToolDefinition;
  /** Validates (and may normalise) the parsed JSON arguments. */
  readonly args: z.ZodType<Args>;
  run(args: Args, context: ToolContext): Promise<ToolResult>;
}
