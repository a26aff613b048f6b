import type { Usage } from '@patchbay/core';

type Counts = Omit<Usage, 'modelCalls' | 'toolCalls'>;

const int = (value: unknown): number =>
  typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;

/**
 * The token counts of one model answer, from its `usage` object in either wire's shape
 * (Responses: input/output tokens; Chat Completions: prompt/completion tokens); null when it has
 * none.
 */
export function usageOf(usage: unknown): Counts | null {
  if (typeof usage !== 'object' || usage === null) return null;
  const u = usage as Record<string, Record<string, unknown> | number | undefined>;
  if ('input_tokens' in u || 'output_tokens' in u) {
    const inDetails = (u.input_tokens_details ?? {}) as Record<string, unknown>;
    const outDetails = (u.output_tokens_details ?? {}) as Record<string, unknown>;
    return {
      inputTokens: int(u.input_tokens),
      cachedInputTokens: int(inDetails.cached_tokens),
      outputTokens: int(u.output_tokens),
      reasoningTokens: int(outDetails.reasoning_tokens),
    };
  }
  if ('prompt_tokens' in u || 'completion_tokens' in u) {
    const inDetails = (u.prompt_tokens_details ?? {}) as Record<string, unknown>;
    const outDetails = (u.completion_tokens_details ?? {}) as Record<string, unknown>;
    return {
      inputTokens: int(u.prompt_tokens),
      cachedInputTokens: int(inDetails.cached_tokens),
      outputTokens: int(u.completion_tokens),
      reasoningTokens: int(outDetails.reasoning_tokens),
    };
  }
  return null;
}

/**
 * The usage in one streamed event's data: a Responses stream's final `response.completed` (or
 * `.incomplete` / `.failed`), or a Chat Completions chunk that carries `usage`.
 */
export function usageOfStreamEvent(data: string): Counts | null {
  if (!data.includes('usage')) return null;
  try {
    const event = JSON.parse(data) as {
      type?: string;
      response?: { usage?: unknown };
      usage?: unknown;
    };
    if (event.response !== undefined) return usageOf(event.response.usage);
    return usageOf(event.usage);
  } catch {
    return null;
  }
}
