import { capText, type TaskEventBody } from '@patchbay/core';
import {
  UsageAccumulator,
  assistantText,
  functionCallOutput,
  functionCalls,
  isAbortError,
  messageText,
  reasoningText,
  totalTokens,
  userMessage,
  ConversationItem,
  type FunctionCallItem,
  type TurnEvent,
  type TurnResult,
} from '../model/index.js';
import { COMPACTION_PROMPT } from '../prompts/compaction.js';
import { abortErrorFrom } from '../tools/abort.js';
import { ToolRegistry } from '../tools/registry.js';
import type { ToolContext, ToolResult } from '../tools/types.js';
import { loadAgentsMd } from './agents-md.js';
import {
  Conversation,
  estimateItemsTokens,
  estimateTokens,
  fallbackSummary,
} from './conversation.js';
import { resolveAgentOptions, type AgentOptions, type ResolvedAgentOptions } from './options.js';
import type { AgentOutcome, AgentRunInput, AgentStopReason, AgentTranscript } from './types.js';

/** Longest delay `setTimeout` takes (about 24.8 days); longer deadlines are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Sent when a reply was cut off by the output token cap without calling a tool. */
const CONTINUE_PROMPT =
  'Your previous reply was cut off at the output token limit. Continue the task, more briefly.';

/**
 * The agent loop: a conversation with the model in which it uses `shell`, `apply_patch` and
 * `update_plan` on a sandbox until it answers without calling a tool, or a budget runs out.
 *
 * It implements the pipeline's `AgentRunner` port (structurally). A budget that runs out ends
 * the run normally with its `stopReason`; cancellation (the input's signal) rejects with an
 * `AbortError` once the model call or command in flight has stopped; a model error that
 * retrying did not fix rejects with `PatchbayError('model_error')`, a broken sandbox with
 * `PatchbayError('sandbox_error')`.
 *
 * Tool calls of one turn run one after another, in the order the model gave them: they share
 * one workspace, and a model that emits "apply this patch" and "run the tests" together means
 * them in that order. Each call is settled (a failure is its result) before the next starts,
 * and every call is answered before the next model turn.
 */
export class Agent {
  readonly #options: ResolvedAgentOptions;
  readonly #tools: ToolRegistry;

  constructor(options: AgentOptions) {
    this.#options = resolveAgentOptions(options);
    this.#tools = ToolRegistry.standard(this.#options);
  }

  /** The tools offered to the model, in the order they are sent. */
  get tools(): ToolRegistry['definitions'] {
    return this.#tools.definitions;
  }

  async run(input: AgentRunInput): Promise<AgentOutcome> {
    if (input.signal.aborted) throw abortErrorFrom(input.signal);
    return new AgentRun(this.#options, this.#tools, input).run();
  }
}

/** The conversation items of a stored history (it comes from the artifact store, not from code). */
function conversationItems(history: readonly unknown[]): ConversationItem[] {
  return history.flatMap((item) => {
    const parsed = ConversationItem.safeParse(item);
    return parsed.success ? [parsed.data] : [];
  });
}

/** Splits a history at each user message, so compaction can cut between earlier turns. */
function promptBlocks(items: readonly ConversationItem[]): ConversationItem[][] {
  const blocks: ConversationItem[][] = [];
  for (const item of items) {
    const opens = item.type === 'message' && item.role === 'user';
    if (opens || blocks.length === 0) blocks.push([]);
    blocks.at(-1)!.push(item);
  }
  return blocks;
}

/** One run's state; a fresh one per task. */
class AgentRun {
  readonly #options: ResolvedAgentOptions;
  readonly #tools: ToolRegistry;
  readonly #input: AgentRunInput;
  readonly #usage = new UsageAccumulator();
  readonly #log: ConversationItem[] = [];
  readonly #compactions: AgentTranscript['compactions'] = [];
  #conversation = new Conversation([]);
  /** Items of AGENTS.md at the head of the conversation (left out of what a follow-up gets). */
  #pinned = 0;
  #agentsMd: string[] = [];
  #turns = 0;
  #toolCalls = 0;
  #lastText: string | null = null;
  /** The last turn's reported input + output tokens, and the conversation length after it. */
  #lastReport: { tokens: number; length: number } | undefined;

  constructor(options: ResolvedAgentOptions, tools: ToolRegistry, input: AgentRunInput) {
    this.#options = options;
    this.#tools = tools;
    this.#input = input;
  }

  async run(): Promise<AgentOutcome> {
    const { limits } = this.#input;
    await this.#start();
    for (;;) {
      if (this.#turns >= limits.maxTurns) return this.#finish('max_turns');
      if (this.#tokensUsed() >= limits.maxTokens) return this.#finish('max_tokens');
      if (Date.now() >= limits.deadline) return this.#finish('timeout');

      if ((await this.#compactIfNeeded()) === 'deadline') return this.#finish('timeout');
      if (this.#tokensUsed() >= limits.maxTokens) return this.#finish('max_tokens');

      const result = await this.#callModel(this.#conversation.items);
      if (result === 'deadline') return this.#finish('timeout');
      this.#turns += 1;
      this.#conversation.addTurn(result.output);
      this.#record(...result.output);
      this.#lastReport = result.usageReported
        ? { tokens: totalTokens(result.usage), length: this.#conversation.length }
        : undefined;
      this.#emitOutput(result.output);

      const calls = functionCalls(result.output);
      if (calls.length === 0) {
        if (result.status === 'incomplete' && result.incompleteReason === 'max_output_tokens') {
          const nudge = userMessage(CONTINUE_PROMPT);
          this.#conversation.add(nudge);
          this.#record(nudge);
          continue;
        }
        return this.#finish('completed', assistantText(result.output) || null);
      }
      for (const call of calls) {
        const output = await this.#runTool(call);
        this.#conversation.add(output);
        this.#record(output);
      }
    }
  }

  /** Instructions are fixed; the conversation starts with AGENTS.md and the task prompt. */
  async #start(): Promise<void> {
    const { sandbox, signal, limits } = this.#input;
    const agentsMd = await loadAgentsMd(sandbox, {
      workspace: this.#options.workspace,
      maxBytes: this.#options.agentsMdMaxBytes,
      maxFiles: 32,
      maxDepth: 8,
      timeoutMs: Math.max(1, Math.min(15_000, limits.deadline - Date.now())),
      signal,
    });
    this.#agentsMd = agentsMd.files;
    // AGENTS.md goes in as a user message ahead of the task, not into the system prompt: that is
    // where the Codex models are trained to find it, it carries the authority of the user who
    // chose the repository rather than of Patchbay, and the system prompt stays byte-identical
    // across tasks so its cache is shared. It never changes within a run and compaction keeps
    // it, so the prefix of every request stays stable.
    const agentsMdItems = agentsMd.text === undefined ? [] : [userMessage(agentsMd.text)];
    this.#pinned = agentsMdItems.length;
    const prompt = userMessage(this.#input.prompt);
    const history = conversationItems(this.#input.history ?? []);
    if (history.length === 0) {
      this.#conversation = new Conversation([...agentsMdItems, prompt]);
      this.#record(...agentsMdItems, prompt);
      return;
    }
    // A follow-up: the earlier turns go in as whole blocks (one per prompt) that compaction may
    // summarise, and this turn's prompt starts a block of its own after them.
    this.#conversation = new Conversation(agentsMdItems);
    for (const block of promptBlocks(history)) this.#conversation.addTurn(block);
    this.#conversation.addTurn([prompt]);
    this.#record(...agentsMdItems, ...history, prompt);
  }

  #tokensUsed(): number {
    return totalTokens(this.#usage.total);
  }

  /**
   * One model call with the run's instructions and tools. Resolves `'deadline'` when the run's
   * deadline aborted it; rejects with the abort when the run's signal did.
   */
  async #callModel(input: readonly ConversationItem[]): Promise<TurnResult | 'deadline'> {
    const { signal, limits, model } = this.#input;
    if (signal.aborted) throw abortErrorFrom(signal);
    const controller = new AbortController();
    const onAbort = (): void => controller.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    const deadlineReason = new Error('the task deadline was reached');
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      const left = limits.deadline - Date.now();
      if (left <= 0) controller.abort(deadlineReason);
      else timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    arm();
    try {
      const result = await this.#options.model.turn({
        instructions: this.#options.systemPrompt,
        input,
        tools: this.#tools.definitions,
        model: model.name,
        ...(model.reasoningEffort === null ? {} : { reasoningEffort: model.reasoningEffort }),
        ...(this.#options.reasoningSummary === undefined
          ? {}
          : { reasoningSummary: this.#options.reasoningSummary }),
        ...(this.#options.maxOutputTokens === undefined
          ? {}
          : { maxOutputTokens: this.#options.maxOutputTokens }),
        cacheKey: this.#input.sandbox.spec.taskId,
        signal: controller.signal,
        onEvent: (event) => this.#onTurnEvent(event),
      });
      this.#usage.add(result);
      this.#emit({ type: 'usage', ...result.usage });
      return result;
    } catch (err) {
      if (signal.aborted) throw isAbortError(err) ? err : abortErrorFrom(signal);
      if (controller.signal.reason === deadlineReason) return 'deadline';
      throw err;
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    }
  }

  #onTurnEvent(event: TurnEvent): void {
    // Deltas are not logged: the turn's items are, once it is done (a retry voids the deltas).
    if (event.type !== 'retry') return;
    const { error } = event;
    const status = error.status === undefined ? '' : ` (HTTP ${error.status})`;
    this.#emit({
      type: 'error',
      code: 'model_error',
      message: `model call failed${status}: ${error.message}; retrying in ${Math.round(event.delayMs / 100) / 10} s (attempt ${event.attempt + 1} of ${event.maxAttempts})`,
    });
  }

  /** Runs one call and answers it; never rejects but to end the run (abort, broken sandbox). */
  async #runTool(call: FunctionCallItem): Promise<ConversationItem> {
    const { sandbox, signal, limits } = this.#input;
    this.#toolCalls += 1;
    const context: ToolContext = {
      sandbox,
      workspace: this.#options.workspace,
      signal,
      deadline: limits.deadline,
      limits: this.#options,
      emit: (event) => this.#emit(event),
    };
    const result: ToolResult =
      Date.now() >= limits.deadline
        ? { output: 'Error: not run: the task has no time left.', ok: false, durationMs: 0 }
        : await this.#tools.execute(call, context);
    const { text, droppedBytes } = capText(result.eventOutput ?? result.output);
    const dropped = (result.eventDroppedBytes ?? 0) + (droppedBytes ?? 0);
    this.#emit({
      type: 'tool_output',
      callId: call.call_id,
      name: call.name,
      ok: result.ok,
      ...(result.exitCode === undefined ? {} : { exitCode: result.exitCode }),
      durationMs: result.durationMs,
      output: text,
      ...(dropped > 0 ? { droppedBytes: dropped } : {}),
    });
    return functionCallOutput(call.call_id, result.output);
  }

  /**
   * Replaces older turns with a model-written summary when the next request would come near
   * the context window. The summary call sends the same instructions, tools and conversation
   * as a turn, plus the summarisation prompt, so it reuses the cached prefix.
   */
  async #compactIfNeeded(): Promise<'deadline' | undefined> {
    const { contextWindowTokens, compactThreshold, compactKeepRecentTokens } = this.#options;
    if (this.#estimateInputTokens() < contextWindowTokens * compactThreshold) return undefined;
    const cut = this.#conversation.compactionCut(compactKeepRecentTokens);
    if (cut === undefined) return undefined;

    const result = await this.#callModel([
      ...this.#conversation.items,
      userMessage(COMPACTION_PROMPT),
    ]);
    if (result === 'deadline') return 'deadline';
    // Tool calls in the reply are ignored (the prompt asks for none): they are not sent again.
    const written = assistantText(result.output).trim();
    const older = this.#conversation.items.slice(0, cut);
    const { item, replaced } = this.#conversation.compact(cut, written || fallbackSummary(older));
    this.#compactions.push({ atItem: this.#log.length, summarizedItems: replaced });
    this.#record(item);
    this.#lastReport = undefined;
    this.#emit({ type: 'compaction', summarizedItems: replaced });
    return undefined;
  }

  /** Input tokens of the next request: the last report plus what came since, else an estimate. */
  #estimateInputTokens(): number {
    const items = this.#conversation.items;
    if (this.#lastReport !== undefined) {
      return this.#lastReport.tokens + estimateItemsTokens(items.slice(this.#lastReport.length));
    }
    return (
      estimateTokens(this.#options.systemPrompt) +
      estimateTokens(JSON.stringify(this.#tools.definitions)) +
      estimateItemsTokens(items)
    );
  }

  #emitOutput(output: readonly ConversationItem[]): void {
    for (const item of output) {
      if (item.type === 'reasoning') {
        const text = reasoningText(item);
        if (text !== '') this.#emit({ type: 'reasoning', ...capText(text) });
      } else if (item.type === 'message' && item.role === 'assistant') {
        const text = messageText(item);
        if (text === '') continue;
        this.#lastText = text;
        this.#emit({ type: 'assistant_message', ...capText(text) });
      } else if (item.type === 'function_call') {
        const { text, droppedBytes } = capText(item.arguments);
        this.#emit({
          type: 'tool_call',
          callId: item.call_id,
          name: item.name,
          arguments: text,
          ...(droppedBytes === undefined ? {} : { droppedBytes }),
        });
      }
    }
  }

  #emit(event: TaskEventBody): void {
    this.#input.emit(event);
  }

  #record(...items: ConversationItem[]): void {
    this.#log.push(...items);
  }

  #finish(stopReason: AgentStopReason, summary?: string | null): AgentOutcome {
    const usage = this.#usage.total;
    return {
      summary: summary === undefined ? this.#lastText : summary,
      stopReason,
      usage: { ...usage, modelCalls: this.#usage.calls, toolCalls: this.#toolCalls },
      conversation: this.#conversation.items.slice(this.#pinned),
      transcript: {
        version: 1,
        model: this.#input.model.name,
        instructions: this.#options.systemPrompt,
        tools: this.#tools.definitions,
        items: this.#log,
        compactions: this.#compactions,
        agentsMd: this.#agentsMd,
        stopReason,
      },
    };
  }
}
