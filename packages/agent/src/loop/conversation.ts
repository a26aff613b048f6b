import type { ConversationItem } from '../model/index.js';
import { messageText, reasoningText, userMessage } from '../model/index.js';
import { COMPACTION_SUMMARY_PREFIX } from '../prompts/compaction.js';

/**
 * Rough bytes per token of code, logs and JSON. Used only where a server reports no usage; it
 * errs towards more tokens (English prose runs nearer 4), so compaction comes early, not late.
 */
const BYTES_PER_TOKEN = 3;

/** A rough token count of `text`, for servers that report no usage. */
export function estimateTokens(text: string): number {
  return Math.ceil(Buffer.byteLength(text, 'utf8') / BYTES_PER_TOKEN);
}

/** A rough token count of conversation items, as they are sent. */
export function estimateItemsTokens(items: readonly ConversationItem[]): number {
  let total = 0;
  for (const item of items) total += estimateTokens(itemText(item)) + 4;
  return total;
}

function itemText(item: ConversationItem): string {
  switch (item.type) {
    case 'message':
      return messageText(item);
    case 'function_call':
      return `${item.name}${item.arguments}`;
    case 'function_call_output':
      return item.output;
    case 'reasoning':
      // Encrypted reasoning is resent and counts, roughly at its (base64) size.
      return `${reasoningText(item)}${item.encrypted_content ?? ''}`;
  }
}

/**
 * The conversation the model sees: pinned items first (the repository's AGENTS.md and the task
 * prompt), then model turns, each its output followed by the outputs of its function calls.
 * Turn starts are tracked so compaction cuts only between whole turns: a `function_call` is
 * never separated from its `function_call_output`, nor a reasoning item from the call it led to.
 */
export class Conversation {
  #items: ConversationItem[];
  readonly #pinned: number;
  /** Index in `#items` where each kept model turn starts, ascending. */
  #turnStarts: number[] = [];

  constructor(pinned: readonly ConversationItem[]) {
    this.#items = [...pinned];
    this.#pinned = pinned.length;
  }

  get items(): readonly ConversationItem[] {
    return this.#items;
  }

  get length(): number {
    return this.#items.length;
  }

  /** Appends a model turn's output. */
  addTurn(output: readonly ConversationItem[]): void {
    this.#turnStarts.push(this.#items.length);
    this.#items.push(...output);
  }

  /** Appends items answering the current turn (function call outputs, a nudge). */
  add(...items: ConversationItem[]): void {
    this.#items.push(...items);
  }

  /**
   * Where compaction would cut: the earliest turn start after which the items fit in
   * `keepTokens`, keeping at least the latest turn. Undefined when no whole turn lies between
   * the pinned items and that point, so there is nothing to summarise.
   */
  compactionCut(keepTokens: number): number | undefined {
    const starts = this.#turnStarts;
    const last = starts[starts.length - 1];
    if (last === undefined) return undefined;
    let cut = last;
    for (let i = starts.length - 2; i >= 0; i--) {
      const start = starts[i];
      if (start === undefined) break;
      if (estimateItemsTokens(this.#items.slice(start)) > keepTokens) break;
      cut = start;
    }
    const first = starts[0];
    if (first === undefined || first >= cut) return undefined;
    return allAnswered(this.#items.slice(this.#pinned, cut)) ? cut : undefined;
  }

  /**
   * Replaces the items between the pinned ones and `cut` (a turn start) with `summary`.
   * @returns the summary item and how many items it replaced.
   */
  compact(cut: number, summary: string): { item: ConversationItem; replaced: number } {
    if (!this.#turnStarts.includes(cut)) throw new RangeError(`${cut} is not the start of a turn`);
    const item = userMessage(`${COMPACTION_SUMMARY_PREFIX}${summary}`);
    const replaced = cut - this.#pinned;
    this.#items = [...this.#items.slice(0, this.#pinned), item, ...this.#items.slice(cut)];
    const shift = replaced - 1;
    this.#turnStarts = this.#turnStarts
      .filter((start) => start >= cut)
      .map((start) => start - shift);
    return { item, replaced };
  }
}

/** True when every function call among `items` is answered among them, and no answer is stray. */
export function allAnswered(items: readonly ConversationItem[]): boolean {
  const open = new Set<string>();
  for (const item of items) {
    if (item.type === 'function_call') open.add(item.call_id);
    else if (item.type === 'function_call_output' && !open.delete(item.call_id)) return false;
  }
  return open.size === 0;
}

/**
 * A summary made without the model, when the compaction call returned no text: the assistant's
 * messages and the calls it made, so the facts survive even if the prose does not.
 */
export function fallbackSummary(items: readonly ConversationItem[], maxBytes = 8 * 1024): string {
  const lines: string[] = [];
  const outputs = new Map<string, string>();
  for (const item of items) {
    if (item.type === 'function_call_output') outputs.set(item.call_id, item.output);
  }
  for (const item of items) {
    if (item.type === 'message' && item.role === 'assistant') {
      lines.push(`Assistant: ${oneLine(messageText(item), 300)}`);
    } else if (item.type === 'function_call') {
      const result = outputs.get(item.call_id);
      lines.push(
        `Called ${item.name} ${oneLine(item.arguments, 200)}${result === undefined ? '' : ` → ${oneLine(result, 200)}`}`,
      );
    }
  }
  let text = 'No written summary is available; these are the steps taken so far:\n';
  for (const line of lines.reverse()) {
    // Newest first: when the budget runs out, it is the oldest steps that are left out.
    if (Buffer.byteLength(text + line, 'utf8') > maxBytes) break;
    text += `- ${line}\n`;
  }
  return text;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
}
