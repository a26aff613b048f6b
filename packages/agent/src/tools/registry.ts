import { isPatchbayError } from '@patchbay/core';
import type { FunctionCallItem, ToolDefinition } from '../model/index.js';
import { applyPatchTool } from './apply-patch.js';
import { describeIssues } from './schema.js';
import { createShellTool } from './shell.js';
import type { Tool, ToolContext, ToolLimits, ToolResult } from './types.js';
import { updatePlanTool } from './update-plan.js';
import { ToolInputError } from './workspace.js';

/**
 * The tools of a run, by name, and the one place a model's function call becomes a result.
 * Everything the model can get wrong comes back as a failed result it can read and correct.
 */
export class ToolRegistry {
  readonly #tools: ReadonlyMap<string, Tool>;
  /** The definitions offered to the model, in a fixed order (prompt caching needs it stable). */
  readonly definitions: readonly ToolDefinition[];

  constructor(tools: readonly Tool[]) {
    this.#tools = new Map(tools.map((tool) => [tool.definition.name, tool]));
    this.definitions = tools.map((tool) => tool.definition);
  }

  /** `shell`, `apply_patch` and `update_plan`, the tools the Codex models know. */
  static standard(
    limits: Pick<ToolLimits, 'defaultCommandTimeoutMs' | 'maxCommandTimeoutMs'>,
  ): ToolRegistry {
    return new ToolRegistry([createShellTool(limits), applyPatchTool, updatePlanTool]);
  }

  /**
   * Runs one call. Rejects only when the run must end: the signal aborted, or the sandbox failed
   * (`PatchbayError('sandbox_error')`, after which every later call would fail the same way).
   */
  async execute(
    call: Pick<FunctionCallItem, 'name' | 'arguments'>,
    context: ToolContext,
  ): Promise<ToolResult> {
    const started = Date.now();
    const failed = (message: string): ToolResult => ({
      output: message,
      ok: false,
      durationMs: Date.now() - started,
    });

    const tool = this.#tools.get(call.name);
    if (tool === undefined) {
      return failed(
        `Error: there is no tool named ${JSON.stringify(call.name)}. Available tools: ${[...this.#tools.keys()].join(', ')}.`,
      );
    }
    let json: unknown;
    try {
      // Some servers send an empty string for a call without arguments.
      json = call.arguments.trim() === '' ? {} : JSON.parse(call.arguments);
    } catch (err) {
      return failed(
        `Error: the arguments of ${call.name} are not valid JSON (${(err as Error).message}). Send one JSON object.`,
      );
    }
    const parsed = tool.args.safeParse(json);
    if (!parsed.success) {
      return failed(`Error: invalid arguments for ${call.name}:\n${describeIssues(parsed.error)}`);
    }
    try {
      return await tool.run(parsed.data, context);
    } catch (err) {
      if (context.signal.aborted) throw err;
      if (err instanceof ToolInputError) return failed(`Error: ${err.message}`);
      if (isPatchbayError(err, 'sandbox_error') || context.sandbox.broken) throw err;
      // Anything else (a helper command failing, an unexpected answer) is reported, not fatal:
      // the model can try another way, and the run's budgets bound how long it keeps trying.
      return failed(
        `Error: ${call.name} failed: ${err instanceof Error ? err.message : String(err)}`,
      );
    }
  }
}
