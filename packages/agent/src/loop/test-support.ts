// Test support for the loop: a model client played from a script, behind the `ModelClient`
// interface. Not exported from the package.

import type { TaskEventBody } from '@patchbay/core';
import type { Sandbox } from '@patchbay/sandbox';
import {
  AbortError,
  type ConversationItem,
  type ModelClient,
  type TokenUsage,
  type TurnRequest,
  type TurnResult,
} from '../model/index.js';
import type { AgentRunInput } from './types.js';

/** What a scripted turn answers. */
export interface FakeTurn {
  text?: string;
  reasoning?: string;
  calls?: { name: string; arguments: string | Record<string, unknown>; id?: string }[];
  /** `null`: the server reports no usage. @default 100 in, 10 out */
  usage?: Partial<TokenUsage> | null;
  incomplete?: string;
  /** Wait before answering (aborting the request cuts it short). */
  delayMs?: number;
  /** Reject instead of answering. */
  error?: Error;
}

export type FakeStep =
  FakeTurn | ((request: TurnRequest, index: number) => FakeTurn | Promise<FakeTurn>);

/** A {@link ModelClient} answering from `script`; it records a copy of every request. */
export class FakeModel implements ModelClient {
  readonly wire = 'responses' as const;
  readonly defaultModel = 'fake-model';
  readonly requests: TurnRequest[] = [];
  readonly #steps: Iterator<FakeStep>;
  #calls = 0;

  constructor(script: Iterable<FakeStep>) {
    this.#steps = script[Symbol.iterator]();
  }

  async turn(request: TurnRequest): Promise<TurnResult> {
    const index = this.requests.length;
    this.requests.push({ ...request, input: structuredClone([...request.input]) });
    const next = this.#steps.next();
    if (next.done === true) throw new Error(`the script has no turn ${index}`);
    const turn = typeof next.value === 'function' ? await next.value(request, index) : next.value;
    if (turn.delayMs !== undefined) await sleep(turn.delayMs, request.signal);
    request.signal?.throwIfAborted();
    if (turn.error) throw turn.error;
    const output: ConversationItem[] = [];
    if (turn.reasoning !== undefined) {
      output.push({
        type: 'reasoning',
        id: `rs_${index}`,
        summary: [{ type: 'summary_text', text: turn.reasoning }],
      });
    }
    if (turn.text !== undefined) {
      output.push({
        type: 'message',
        role: 'assistant',
        content: [{ type: 'output_text', text: turn.text }],
      });
    }
    for (const call of turn.calls ?? []) {
      this.#calls += 1;
      output.push({
        type: 'function_call',
        call_id: call.id ?? `call_${this.#calls}`,
        name: call.name,
        arguments:
          typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
      });
    }
    const reported = turn.usage !== null;
    const usage = turn.usage ?? {};
    return {
      output,
      usage: {
        inputTokens: reported ? (usage.inputTokens ?? 100) : 0,
        cachedInputTokens: usage.cachedInputTokens ?? 0,
        outputTokens: reported ? (usage.outputTokens ?? 10) : 0,
        reasoningTokens: usage.reasoningTokens ?? 0,
      },
      usageReported: reported,
      status: turn.incomplete === undefined ? 'completed' : 'incomplete',
      incompleteReason: turn.incomplete,
      model: request.model ?? this.defaultModel,
      responseId: `resp_${index}`,
      attempts: 1,
    };
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(new AbortError(signal.reason));
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new AbortError(signal?.reason));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** A shell call turn. */
export function shellCall(
  command: string | string[],
  extra: Record<string, unknown> = {},
): FakeTurn['calls'] & object {
  return [{ name: 'shell', arguments: { command, ...extra } }];
}

/** The input of a run, with events collected. */
export function runInput(
  sandbox: Sandbox,
  overrides: Partial<Omit<AgentRunInput, 'limits'>> & {
    limits?: Partial<AgentRunInput['limits']>;
  } = {},
): AgentRunInput & { events: TaskEventBody[] } {
  const events: TaskEventBody[] = [];
  const { limits, ...rest } = overrides;
  return {
    sandbox,
    prompt: 'Fix the bug.',
    model: { name: 'test-model', reasoningEffort: null },
    signal: new AbortController().signal,
    emit: (event) => events.push(event),
    events,
    ...rest,
    limits: { maxTurns: 50, maxTokens: 1_000_000, deadline: Date.now() + 60_000, ...limits },
  };
}
