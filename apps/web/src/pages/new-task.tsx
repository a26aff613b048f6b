import type { TaskSpec } from '@patchbay/core';
import type { JSX } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { ApiError, type Runtime, api } from '../api.js';
import { hrefOf, navigate } from '../router.js';
import { fieldErrors } from '../view/format.js';

interface Form {
  url: string;
  ref: string;
  prompt: string;
  setup: string;
  verify: string;
  attempts: string;
  model: string;
  runtime: string;
}

/** What every field's input gets: its name, value, error wiring and change handler. */
interface FieldProps {
  id: string;
  name: string;
  value: string;
  'aria-invalid': boolean;
  'aria-describedby'?: string;
  onInput: (e: { currentTarget: { value: string } }) => void;
}

const EMPTY: Form = {
  url: '',
  ref: '',
  prompt: '',
  setup: '',
  verify: '',
  attempts: '1',
  model: '',
  runtime: '',
};

/** The spec fields the form draws (a refusal of any other is shown at the top). */
const DRAWN = [
  'repo.url',
  'repo',
  'repo.ref',
  'prompt',
  'environment.setup',
  'environment',
  'environment.verify',
  'attempts',
  'model.name',
  'model',
  'models',
  'agent.runtime',
  'agent',
];

/** The spec a filled form asks for: empty fields are left out, so the server's defaults hold. */
function specOf(form: Form): TaskSpec {
  const environment = {
    ...(form.setup.trim() ? { setup: form.setup } : {}),
    ...(form.verify.trim() ? { verify: form.verify } : {}),
  };
  const attempts = Number(form.attempts);
  return {
    repo: { url: form.url.trim(), ...(form.ref.trim() ? { ref: form.ref.trim() } : {}) },
    prompt: form.prompt,
    ...(Object.keys(environment).length > 0 ? { environment } : {}),
    ...(form.model.trim() ? { model: { name: form.model.trim() } } : {}),
    ...(Number.isFinite(attempts) && attempts !== 1 ? { attempts } : {}),
    ...(form.runtime === 'patchbay' || form.runtime === 'codex'
      ? { agent: { runtime: form.runtime } }
      : {}),
  };
}

/** Submits a task; the API's refusals are shown beside the field they concern. */
export function NewTask() {
  const [form, setForm] = useState<Form>(EMPTY);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  // The runtimes the server offers; until they are known (or if asking fails), the field offers
  // only the server's default, which a task that names no runtime gets anyway.
  const [runtimes, setRuntimes] = useState<Runtime[]>([]);
  useEffect(() => {
    api.runtimes().then(
      (offered) => {
        setRuntimes(offered);
        const preset = offered.find((r) => r.default)?.name ?? '';
        setForm((f) => (f.runtime === '' ? { ...f, runtime: preset } : f));
      },
      () => undefined,
    );
  }, []);

  const field = (
    name: keyof Form,
    label: string,
    errorKeys: string[],
    input: (props: FieldProps) => JSX.Element,
    hint?: string,
  ): JSX.Element => {
    const error = errorKeys.map((k) => errors[k]).find((e) => e !== undefined);
    const id = `field-${name}`;
    const described = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean);
    return (
      <div class="field">
        <label for={id}>{label}</label>
        {input({
          id,
          name,
          value: form[name],
          'aria-invalid': error !== undefined,
          ...(described.length > 0 ? { 'aria-describedby': described.join(' ') } : {}),
          onInput: (e) => setForm({ ...form, [name]: e.currentTarget.value }),
        })}
        {hint && (
          <p id={`${id}-hint`} class="hint">
            {hint}
          </p>
        )}
        {error && (
          <p id={`${id}-error`} class="field-error" data-field={name}>
            {error}
          </p>
        )}
      </div>
    );
  };

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      const task = await api.submit(specOf(form));
      navigate(hrefOf.task(task.id));
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

  return (
    <form class="card form" onSubmit={(e) => void submit(e)} noValidate>
      <h1>New task</h1>
      {errors[''] && (
        <p class="notice error" role="alert">
          {errors['']}
        </p>
      )}
      <div class="row">
        {field('url', 'Repository URL', ['repo.url', 'repo'], (p) => (
          <input {...p} type="url" required placeholder="https://github.com/owner/repo.git" />
        ))}
        {field('ref', 'Ref', ['repo.ref'], (p) => (
          <input {...p} type="text" placeholder="default branch" />
        ))}
      </div>
      {field(
        'prompt',
        'Prompt',
        ['prompt'],
        (p) => (
          <textarea {...p} rows={6} required />
        ),
        'What the agent should do, in plain words.',
      )}
      {field(
        'setup',
        'Setup',
        ['environment.setup', 'environment'],
        (p) => (
          <textarea {...p} rows={2} class="mono" placeholder="npm ci" />
        ),
        'Runs before the agent, with network.',
      )}
      {field(
        'verify',
        'Verify',
        ['environment.verify'],
        (p) => (
          <textarea {...p} rows={2} class="mono" placeholder="npm test" />
        ),
        'Runs after the agent; its verdict is part of the result.',
      )}
      <div class="row">
        {field('attempts', 'Attempts', ['attempts'], (p) => (
          <input {...p} type="number" min={1} max={8} step={1} />
        ))}
        {field('model', 'Model', ['model.name', 'model', 'models'], (p) => (
          <input {...p} type="text" placeholder="server default" />
        ))}
      </div>
      {field(
        'runtime',
        'Agent',
        ['agent.runtime', 'agent'],
        (p) => (
          <select {...p} onChange={p.onInput}>
            {runtimes.length === 0 && <option value="">server default</option>}
            {runtimes.map((r) => (
              <option key={r.name} value={r.name}>
                {r.default ? `${r.name} (default)` : r.name}
              </option>
            ))}
          </select>
        ),
        runtimes.find((r) => r.name === form.runtime)?.summary ?? 'Which agent works on the task.',
      )}
      <div class="actions">
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Submitting…' : 'Start task'}
        </button>
        <a href={hrefOf.tasks}>Cancel</a>
      </div>
    </form>
  );
}
