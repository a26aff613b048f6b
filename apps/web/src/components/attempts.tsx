import type { Attempt, TaskResult } from '@patchbay/core';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type AttemptList, api } from '../api.js';
import { count, preciseDuration } from '../view/format.js';
import { DiffView } from './diff-view.js';
import { StatusChip } from './status.js';

const tokens = (a: Attempt): number => a.usage.inputTokens + a.usage.outputTokens;

function verdict(a: Attempt): string {
  const verify = a.result?.verify;
  if (!verify) return '—';
  return verify.passed ? 'passed' : `failed (exit ${verify.exitCode ?? 'none'})`;
}

/**
 * The current turn's attempts side by side: what each changed, its verify verdict, its cost,
 * which one the rule chose and why; any attempt's diff on demand, and "use this one".
 */
export function Attempts({
  taskId,
  version,
  ended,
  selection,
  onChosen,
}: {
  taskId: string;
  /** Changes when the task record does, so the list is read again. */
  version: string;
  ended: boolean;
  /** How the turn's result was chosen (the task record's). */
  selection: TaskResult['selection'] | null;
  onChosen: () => void;
}) {
  const [list, setList] = useState<AttemptList | null>(null);
  const [shown, setShown] = useState<{ n: number; patch: string } | null>(null);
  const [error, setError] = useState<string | null>(null);
  // Bumped after a choice, which changes the list but not the task's status or turn.
  const [reads, setReads] = useState(0);

  useEffect(() => {
    api.attempts(taskId).then(setList, (err: unknown) => setError(messageOf(err)));
  }, [taskId, version, reads]);

  if (error) return <p class="notice error">{error}</p>;
  if (!list) return <p class="muted">Loading…</p>;
  return (
    <div>
      {selection && (
        <p>
          Chose attempt {selection.chosen} by rule <em>{selection.rule}</em>: {selection.reason}
          {selection.overruled && ` (overruled: the rule chose ${selection.overruled.ruleChose})`}
        </p>
      )}
      <table class="attempts">
        <caption class="visually-hidden">Attempts of turn {list.turn}</caption>
        <thead>
          <tr>
            <th scope="col">#</th>
            <th scope="col">Model</th>
            <th scope="col">Status</th>
            <th scope="col">Verify</th>
            <th scope="col">Files</th>
            <th scope="col">Lines</th>
            <th scope="col">Tokens</th>
            <th scope="col">Time</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {list.attempts.map((a) => {
            const result = a.changes ?? a.result;
            const ran =
              a.startedAt && a.finishedAt
                ? Date.parse(a.finishedAt) - Date.parse(a.startedAt)
                : null;
            return (
              <tr key={a.n} class={a.n === list.chosen ? 'chosen' : ''} data-attempt={a.n}>
                <th scope="row">
                  {a.n}
                  {a.n === list.chosen && <span class="tag">chosen</span>}
                </th>
                <td class="mono small">{a.model}</td>
                <td>
                  <StatusChip status={a.status} />
                </td>
                <td>{verdict(a)}</td>
                <td>{result ? result.files.length : '—'}</td>
                <td>
                  {result ? (
                    <>
                      <span class="adds">+{result.additions}</span>{' '}
                      <span class="dels">−{result.deletions}</span>
                    </>
                  ) : (
                    '—'
                  )}
                </td>
                <td>{count(tokens(a))}</td>
                <td>{ran === null ? '—' : preciseDuration(ran)}</td>
                <td class="actions">
                  {a.result && (
                    <button
                      type="button"
                      onClick={() =>
                        void api.attemptPatch(taskId, a.n).then(
                          (patch) => setShown({ n: a.n, patch }),
                          (err: unknown) => setError(messageOf(err)),
                        )
                      }
                    >
                      Diff
                    </button>
                  )}
                  {ended && a.result && a.n !== list.chosen && (
                    <button
                      type="button"
                      onClick={() =>
                        void api.choose(taskId, a.n).then(
                          () => {
                            setReads(reads + 1);
                            onChosen();
                          },
                          (err: unknown) => setError(messageOf(err)),
                        )
                      }
                    >
                      Use this one
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
      {shown && (
        <section aria-label={`Diff of attempt ${shown.n}`}>
          <h3>Attempt {shown.n}</h3>
          <DiffView patch={shown.patch} idPrefix={`attempt-${shown.n}`} />
        </section>
      )}
    </div>
  );
}

function messageOf(err: unknown): string {
  return err instanceof ApiError ? `${err.code}: ${err.message}` : 'the API does not answer';
}
