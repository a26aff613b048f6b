import type { TaskEventBody, TaskPhase } from '@patchbay/core';

export interface OutputSinkOptions {
  phase: TaskPhase;
  emit: (event: TaskEventBody) => void;
  /** Values replaced by `[secret]` before any text leaves the sink. */
  secrets?: readonly string[];
  /** Flush when this much text is pending. @default 32 KiB */
  flushBytes?: number;
  /** Flush at least this often while output arrives. @default 250 */
  flushMs?: number;
  /** Shared budget of output bytes for the whole task; past it output is counted, not sent. */
  budget: { remaining: number };
}

/**
 * Turns a command's output chunks into `output` events: batched (not one event per chunk),
 * secrets masked, and bounded by the task's output budget.
 */
export class OutputSink {
  readonly #options: OutputSinkOptions;
  readonly #secrets: string[];
  /** Text held back at the end of each flush so a secret split across chunks is still masked. */
  readonly #holdBack: number;
  #pending = '';
  #dropped = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(options: OutputSinkOptions) {
    this.#options = options;
    // Longest first, so a secret that contains another is masked whole.
    this.#secrets = [...new Set(options.secrets ?? [])]
      .filter((s) => s.length >= 4)
      .sort((a, b) => b.length - a.length);
    this.#holdBack = Math.max(0, ...this.#secrets.map((s) => s.length - 1));
  }

  write = (chunk: Buffer): void => {
    this.#pending += chunk.toString('utf8');
    if (Buffer.byteLength(this.#pending) >= (this.#options.flushBytes ?? 32 * 1024))
      this.#flush(false);
    else this.#timer ??= setTimeout(() => this.#flush(false), this.#options.flushMs ?? 250);
  };

  /** Sends whatever is pending; call once the command has ended. */
  end(): void {
    this.#flush(true);
    if (this.#dropped > 0) {
      this.#options.emit({
        type: 'output',
        phase: this.#options.phase,
        text: `[output past the task's event budget: ${this.#dropped} bytes not logged]\n`,
        droppedBytes: this.#dropped,
      });
      this.#dropped = 0;
    }
  }

  /** Masks every secret in `text`. */
  mask(text: string): string {
    let masked = text;
    for (const secret of this.#secrets) masked = masked.split(secret).join('[secret]');
    return masked;
  }

  #flush(final: boolean): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const masked = this.mask(this.#pending);
    const cut = final ? masked.length : Math.max(0, masked.length - this.#holdBack);
    const text = masked.slice(0, cut);
    this.#pending = masked.slice(cut);
    if (text.length === 0) return;
    const bytes = Buffer.byteLength(text);
    const { budget } = this.#options;
    if (budget.remaining <= 0) {
      this.#dropped += bytes;
      return;
    }
    const sent =
      bytes <= budget.remaining
        ? text
        : Buffer.from(text).subarray(0, budget.remaining).toString('utf8');
    const sentBytes = Buffer.byteLength(sent);
    budget.remaining -= sentBytes;
    this.#dropped += bytes - sentBytes;
    this.#options.emit({ type: 'output', phase: this.#options.phase, text: sent });
  }
}
