import type { Task, TaskEvent } from '@patchbay/core';
import type { CommandContext } from './context.js';
import { renderEvent } from './render.js';

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/**
 * A one-line "still working" indicator on a terminal, redrawn in place and erased before each
 * real line so that the scrollback holds only the log.
 */
class Progress {
  private frame = 0;
  private status = 'waiting';
  private readonly started = Date.now();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly write: (text: string) => void) {
    this.timer = setInterval(() => this.draw(), 120);
    this.timer.unref();
  }

  update(event: TaskEvent): void {
    if (event.type === 'status') this.status = event.status;
    if (event.type === 'phase') this.status = `running · ${event.phase}`;
  }

  clear(): void {
    this.write('\r\u001b[2K');
  }

  private draw(): void {
    const elapsed = Math.round((Date.now() - this.started) / 1000);
    this.frame = (this.frame + 1) % SPINNER.length;
    this.write(`\r\u001b[2K${SPINNER[this.frame]!} ${this.status} · ${elapsed}s`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
  }
}

/**
 * Follows a task's live log to its end: readable lines (with a progress line on a terminal), or
 * one JSON event per line with `--json`, or nothing (`silent`: a script waiting for the end);
 * `turns` bounds it (default: from the start to the end of turn 1). Returns the task record as it
 * ended.
 */
export async function followTask(
  ctx: CommandContext,
  id: string,
  mode: 'text' | 'json' | 'silent' = ctx.json ? 'json' : 'text',
  turns: { from?: number; until?: number } = {},
): Promise<Task> {
  const progress =
    ctx.tty && mode === 'text' ? new Progress((t) => process.stdout.write(t)) : undefined;
  const options = {
    ...(turns.from === undefined ? {} : { fromTurn: turns.from }),
    ...(turns.until === undefined ? {} : { untilTurn: turns.until }),
  };
  try {
    for await (const event of ctx.client.follow(id, options)) {
      progress?.update(event);
      if (mode === 'silent') continue;
      const text = mode === 'json' ? JSON.stringify(event) : renderEvent(event, { color: ctx.tty });
      if (text === null) continue;
      progress?.clear();
      ctx.out(text);
    }
  } finally {
    progress?.stop();
  }
  return ctx.client.get(id);
}
