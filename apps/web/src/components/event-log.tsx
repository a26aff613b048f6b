import type { PlanStep } from '@patchbay/core';
import type { FoldedLog, LogItem } from '../view/events.js';
import { preciseDuration } from '../view/format.js';
import { ExitChip, StatusChip } from './status.js';

/** A command's or tool's output, folded; open by default when it failed. */
function Output({ text, open }: { text: string; open: boolean }) {
  if (text.trim() === '') return null;
  const lines = text.replace(/\n+$/, '').split('\n').length;
  return (
    <details class="output" open={open}>
      <summary>
        output · {lines} line{lines === 1 ? '' : 's'}
      </summary>
      <pre>{text}</pre>
    </details>
  );
}

export function PlanView({ steps }: { steps: PlanStep[] }) {
  return (
    <ol class="plan">
      {steps.map((step, i) => (
        <li key={i} class={`plan-${step.status}`}>
          <span class="plan-mark" aria-label={step.status.replace('_', ' ')}>
            {step.status === 'completed' ? '✓' : step.status === 'in_progress' ? '▸' : '○'}
          </span>{' '}
          {step.step}
        </li>
      ))}
    </ol>
  );
}

function Item({ item }: { item: LogItem }) {
  switch (item.kind) {
    case 'turn':
      return (
        <div class="log-turn">
          <h3>Turn {item.n}</h3>
          <p class="prompt">{item.prompt}</p>
        </div>
      );
    case 'status':
      return (
        <div class="log-status">
          <StatusChip status={item.status} />
          {item.error && (
            <span class="error-text">
              {' '}
              {item.error.code}: {item.error.message}
            </span>
          )}
        </div>
      );
    case 'phase':
      return (
        <div class="log-phase">
          {item.phase}
          {item.warm === true ? ' (warm: the sandbox the last turn left)' : ''}
          {item.warm === false ? ' (cold: rebuilt from the patch so far)' : ''}
          {item.try !== null && item.try > 1 ? ` (try ${item.try})` : ''}
        </div>
      );
    case 'message':
      return <div class="log-message">{item.text}</div>;
    case 'reasoning':
      return (
        <details class="log-reasoning">
          <summary>reasoning</summary>
          <p>{item.text}</p>
        </details>
      );
    case 'command': {
      const failed = !item.pending && (item.exitCode !== 0 || item.timedOut);
      return (
        <div class={`log-command${failed ? ' failed' : ''}`} data-phase={item.phase}>
          <div class="command-line">
            {item.phase !== 'agent' && <span class="tag">{item.phase}</span>}
            <code>$ {item.command}</code>
            {item.pending ? (
              <span class="chip chip-running">running</span>
            ) : (
              <>
                <ExitChip code={item.exitCode} timedOut={item.timedOut} />
                {item.durationMs !== null && (
                  <span class="muted small">{preciseDuration(item.durationMs)}</span>
                )}
              </>
            )}
          </div>
          <Output text={item.output} open={failed} />
        </div>
      );
    }
    case 'edit':
      return (
        <div class={`log-edit${item.ok === false ? ' failed' : ''}`}>
          <div class="command-line">
            <span class="tag">edit</span>
            <span>{item.files.join(', ') || '(no files)'}</span>
            {item.ok === false && <span class="chip chip-failed">refused</span>}
          </div>
          <details class="output">
            <summary>patch</summary>
            <pre>{item.patch}</pre>
          </details>
          {item.ok === false && <Output text={item.output} open />}
        </div>
      );
    case 'tool':
      return (
        <div class="log-command">
          <div class="command-line">
            <span class="tag">{item.name}</span>
            <code class="small">{item.args}</code>
          </div>
          <Output text={item.output} open={item.ok === false} />
        </div>
      );
    case 'plan':
      return (
        <div class="log-plan">
          <span class="tag">plan</span>
          {item.explanation && <p>{item.explanation}</p>}
          <PlanView steps={item.steps} />
        </div>
      );
    case 'attempt':
      return (
        <div class="log-status">
          Attempt {item.attempt} ({item.model}) <StatusChip status={item.status} />
          {item.error && <span class="error-text"> {item.error.message}</span>}
        </div>
      );
    case 'compaction':
      return (
        <div class="log-phase">context compacted ({item.summarizedItems} items summarized)</div>
      );
    case 'blocked':
      return (
        <div class="log-blocked">
          <span class="tag">network</span>
          {item.host}:{item.port} refused ({item.reason.replace('_', ' ')})
        </div>
      );
    case 'error':
      return (
        <div class="log-error" role="alert">
          {item.code}: {item.message}
        </div>
      );
  }
}

/** The folded log, oldest first. */
export function EventLog({ log }: { log: FoldedLog }) {
  if (log.items.length === 0) return <p class="muted">No events yet.</p>;
  return (
    <ol class="log" aria-label="Event log" data-last-seq={log.lastSeq}>
      {log.items.map((item) => (
        <li key={item.key} data-kind={item.kind} data-seq={item.key}>
          <Item item={item} />
        </li>
      ))}
    </ol>
  );
}
