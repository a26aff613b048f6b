import type { ScheduleRun, ScheduleSpec, ScheduleView } from '@patchbay/core';
import { useState } from 'preact/hooks';
import { ApiError, api } from '../api.js';
import { usePoll } from '../hooks.js';
import { hrefOf } from '../router.js';
import { fieldErrors, repoName } from '../view/format.js';

interface Form {
  url: string;
  ref: string;
  prompt: string;
  verify: string;
  cron: string;
  timezone: string;
}

const EMPTY: Form = {
  url: '',
  ref: '',
  prompt: '',
  verify: '',
  cron: '0 9 * * 1-5',
  timezone: Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC',
};

/** The fields the form draws (a refusal of any other is shown at the top). */
const DRAWN = [
  'spec.repo.url',
  'spec.repo',
  'spec.repo.ref',
  'spec.prompt',
  'spec.environment.verify',
  'cron',
  'timezone',
];

/** The schedule a filled form asks for; empty fields are left out (the server's defaults hold). */
function specOf(form: Form): ScheduleSpec {
  return {
    cron: form.cron.trim(),
    timezone: form.timezone.trim() || 'UTC',
    spec: {
      repo: { url: form.url.trim(), ...(form.ref.trim() ? { ref: form.ref.trim() } : {}) },
      prompt: form.prompt,
      ...(form.verify.trim() ? { environment: { verify: form.verify } } : {}),
    },
  };
}

/** A firing in words: the task it started (a link), or why it started none. */
function RunText({ run }: { run: ScheduleRun }) {
  const at = new Date(run.at).toLocaleString();
  return run.taskId ? (
    <>
      {at}: <a href={hrefOf.task(run.taskId)}>task</a>
    </>
  ) : (
    <>
      {at}: skipped ({run.skipped ?? 'no task'})
    </>
  );
}

/** One schedule's firings, loaded when its row is opened. */
function Runs({ id }: { id: string }) {
  const [runs, setRuns] = useState<ScheduleRun[] | null>(null);
  usePoll(async () => setRuns(await api.scheduleRuns(id)), 5000, [id]);
  if (runs === null) return <p class="muted">Loading…</p>;
  if (runs.length === 0) return <p class="muted">It has not fired yet.</p>;
  return (
    <ol class="runs">
      {runs.map((run) => (
        <li key={run.at}>
          <RunText run={run} />
        </li>
      ))}
    </ol>
  );
}

/** The caller's schedules: each with its next and last run, pause, resume and delete; and a form to add one. */
export function Schedules() {
  const [schedules, setSchedules] = useState<ScheduleView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  const load = async (): Promise<void> => {
    try {
      setSchedules(await api.schedules());
      setError(null);
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'the API does not answer');
    }
  };
  usePoll(load, 5000, []);

  const act = async (work: () => Promise<unknown>): Promise<void> => {
    try {
      await work();
    } catch (err) {
      setError(err instanceof ApiError ? err.message : 'the API does not answer');
    }
    await load();
  };

  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await api.addSchedule(specOf(form));
      setForm(EMPTY);
      await load();
    } catch (err) {
      setErrors(
        err instanceof ApiError
          ? fieldErrors(err, DRAWN)
          : { '': 'The API does not answer; try again.' },
      );
    } finally {
      setBusy(false);
    }
  };

  const input = (name: keyof Form, label: string, keys: string[], hint?: string, area = false) => {
    const id = `schedule-${name}`;
    const message = keys.map((k) => errors[k]).find((m) => m !== undefined);
    const props = {
      id,
      name,
      value: form[name],
      'aria-invalid': message !== undefined,
      ...(message ? { 'aria-describedby': `${id}-error` } : {}),
      onInput: (e: { currentTarget: { value: string } }) =>
        setForm({ ...form, [name]: e.currentTarget.value }),
    };
    return (
      <div class="field">
        <label for={id}>{label}</label>
        {area ? <textarea {...props} rows={3} /> : <input {...props} type="text" />}
        {hint && <p class="hint">{hint}</p>}
        {message && (
          <p id={`${id}-error`} class="field-error" data-field={name}>
            {message}
          </p>
        )}
      </div>
    );
  };

  return (
    <section aria-labelledby="schedules-title">
      <div class="toolbar">
        <h1 id="schedules-title">Schedules</h1>
      </div>
      {error && (
        <p class="notice error" role="alert">
          {error}
        </p>
      )}
      {schedules === null ? (
        <p class="muted">Loading…</p>
      ) : schedules.length === 0 ? (
        <p class="muted">No schedules yet.</p>
      ) : (
        <table class="tasks schedules">
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">When</th>
              <th scope="col">Next run</th>
              <th scope="col">Last run</th>
              <th scope="col">
                <span class="visually-hidden">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {schedules.map((s) => (
              <tr key={s.id} data-schedule={s.id}>
                <td class="prompt-cell">
                  <details>
                    <summary>{s.spec.prompt.trim().split('\n')[0]}</summary>
                    <p class="mono small">{repoName(s.spec.repo.url)}</p>
                    <Runs id={s.id} />
                  </details>
                </td>
                <td class="mono small">
                  {s.cron} ({s.timezone})
                </td>
                <td>
                  {s.paused ? 'paused' : s.nextRunAt ? new Date(s.nextRunAt).toLocaleString() : '—'}
                </td>
                <td>{s.lastRun ? <RunText run={s.lastRun} /> : '—'}</td>
                <td class="actions">
                  <button
                    type="button"
                    onClick={() => void act(() => api.pauseSchedule(s.id, !s.paused))}
                  >
                    {s.paused ? 'Resume' : 'Pause'}
                  </button>
                  <button
                    type="button"
                    class="quiet"
                    onClick={() => {
                      if (window.confirm('Delete this schedule? Its tasks stay.'))
                        void act(() => api.deleteSchedule(s.id));
                    }}
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <form class="card form" onSubmit={(e) => void add(e)} noValidate>
        <h2>New schedule</h2>
        {errors[''] && (
          <p class="notice error" role="alert">
            {errors['']}
          </p>
        )}
        <div class="row">
          {input('url', 'Repository URL', ['spec.repo.url', 'spec.repo'])}
          {input('ref', 'Ref', ['spec.repo.ref'])}
        </div>
        {input('prompt', 'Prompt', ['spec.prompt'], undefined, true)}
        {input('verify', 'Verify', ['spec.environment.verify'], 'Runs after the agent.')}
        <div class="row">
          {input('cron', 'Cron', ['cron'], 'minute hour day month weekday, e.g. 0 9 * * 1-5')}
          {input('timezone', 'Time zone', ['timezone'], 'e.g. Europe/Paris')}
        </div>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Adding…' : 'Add schedule'}
          </button>
        </div>
      </form>
    </section>
  );
}
