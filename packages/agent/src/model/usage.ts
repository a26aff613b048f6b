import type { TokenUsage, TurnResult } from './types.js';

export function emptyUsage(): TokenUsage {
  return { inputTokens: 0, cachedInputTokens: 0, outputTokens: 0, reasoningTokens: 0 };
}

function addUsage(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    reasoningTokens: a.reasoningTokens + b.reasoningTokens,
  };
}

/** Input plus output tokens: what a token budget counts. */
export function totalTokens(usage: TokenUsage): number {
  return usage.inputTokens + usage.outputTokens;
}

/** Per-run totals: add each turn's result, read `total` and `calls`. */
export class UsageAccumulator {
  #total = emptyUsage();
  #calls = 0;
  #unreported = 0;

  add(result: Pick<TurnResult, 'usage' | 'usageReported'>): void {
    this.#total = addUsage(this.#total, result.usage);
    this.#calls += 1;
    if (!result.usageReported) this.#unreported += 1;
  }

  /** A copy of the sums so far. */
  get total(): TokenUsage {
    return { ...this.#total };
  }

  /** Model calls added. */
  get calls(): number {
    return this.#calls;
  }

  /** Calls whose server reported no usage: totals are a lower bound when this is not 0. */
  get unreportedCalls(): number {
    return this.#unreported;
  }
}
