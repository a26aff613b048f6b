import type { TaskStatus } from '@patchbay/core';

/** A task's (or attempt's) status as a chip: a word and a colour, never the colour alone. */
export function StatusChip({ status, phase }: { status: TaskStatus; phase?: string | null }) {
  return (
    <span class={`chip chip-${status}`} data-status={status}>
      {status}
      {status === 'running' && phase ? ` · ${phase}` : ''}
    </span>
  );
}

export function ExitChip({ code, timedOut }: { code: number | null; timedOut?: boolean }) {
  if (timedOut) return <span class="chip chip-failed">timed out</span>;
  if (code === null) return <span class="chip chip-failed">killed</span>;
  return <span class={`chip ${code === 0 ? 'chip-succeeded' : 'chip-failed'}`}>exit {code}</span>;
}
