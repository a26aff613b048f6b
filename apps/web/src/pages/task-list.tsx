import type { TaskStatus, TaskView } from '@patchbay/core';
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { StatusChip } from '../components/status.js';
import { useNow, usePoll } from '../hooks.js';
import { hrefOf } from '../router.js';
import { duration, repoName, runTime } from '../view/format.js';

const STATUSES: TaskStatus[] = ['queued', 'running', 'succeeded', 'failed', 'cancelled'];
const PAGE_SIZE = 20;

/** The caller's tasks, newest first, a page at a time, kept current by polling. */
export function TaskList() {
  const [status, setStatus] = useState<TaskStatus | ''>('');
  // The cursors of the pages before this one, and this one's (undefined: the first page).
  const [cursors, setCursors] = useState<(string | undefined)[]>([undefined]);
  const [page, setPage] = useState<{ tasks: TaskView[]; nextCursor: string | null } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const now = useNow(5000);
  const cursor = cursors.at(-1);

  usePoll(
    async () => {
      try {
        setPage(await api.list({ status: status || undefined, cursor, limit: PAGE_SIZE }));
        setError(null);
      } catch (err) {
        setError(err instanceof ApiError ? err.message : 'the API does not answer');
      }
    },
    3000,
    [status, cursor],
  );

  return (
    <section aria-labelledby="tasks-title">
      <div class="toolbar">
        <h1 id="tasks-title">Tasks</h1>
        <label class="inline">
          Status{' '}
          <select
            value={status}
            onChange={(e) => {
              setStatus(e.currentTarget.value as TaskStatus | '');
              setCursors([undefined]);
              setPage(null);
            }}
          >
            <option value="">all</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <a class="button primary" href={hrefOf.newTask}>
          New task
        </a>
      </div>
      {error && (
        <p class="notice error" role="alert">
          {error}
        </p>
      )}
      {page === null ? (
        <p class="muted">Loading…</p>
      ) : page.tasks.length === 0 ? (
        <p class="muted">
          No tasks{status ? ` ${status}` : ''} yet. <a href={hrefOf.newTask}>Start one.</a>
        </p>
      ) : (
        <table class="tasks">
          <thead>
            <tr>
              <th scope="col">Status</th>
              <th scope="col">Task</th>
              <th scope="col">Repository</th>
              <th scope="col">Age</th>
              <th scope="col">Duration</th>
            </tr>
          </thead>
          <tbody>
            {page.tasks.map((task) => {
              const ran = runTime(task, now);
              return (
                <tr key={task.id} data-task={task.id}>
                  <td>
                    <StatusChip status={task.status} phase={task.phase} />
                  </td>
                  <td class="prompt-cell">
                    <a href={hrefOf.task(task.id)}>{firstLine(task.prompt)}</a>
                    {task.turn > 1 && <span class="muted"> · {task.turn} turns</span>}
                    {task.attempts > 1 && <span class="muted"> · {task.attempts} attempts</span>}
                  </td>
                  <td class="mono small">
                    {repoName(task.repo.url)}
                    {task.repo.ref ? `@${task.repo.ref}` : ''}
                  </td>
                  <td>
                    <time dateTime={task.createdAt} title={task.createdAt}>
                      {duration(now - Date.parse(task.createdAt))} ago
                    </time>
                  </td>
                  <td>{ran === null ? '—' : duration(ran)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={cursors.length === 1}
          onClick={() => setCursors(cursors.slice(0, -1))}
        >
          Newer
        </button>
        <button
          type="button"
          disabled={!page?.nextCursor}
          onClick={() => page?.nextCursor && setCursors([...cursors, page.nextCursor])}
        >
          Older
        </button>
      </nav>
    </section>
  );
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0]!;
  return line.length > 120 ? `${line.slice(0, 119)}…` : line;
}
