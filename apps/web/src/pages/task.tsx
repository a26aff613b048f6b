import type { Timings, TaskView } from '@patchbay/core';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError, type Connection, api, followEvents, session } from '../api.js';
import { Attempts } from '../components/attempts.js';
import { DiffView } from '../components/diff-view.js';
import { EventLog, PlanView } from '../components/event-log.js';
import { StatusChip } from '../components/status.js';
import { useNow, usePoll } from '../hooks.js';
import { EMPTY_LOG, type FoldedLog, foldEvents } from '../view/events.js';
import {
  applyCommand,
  count,
  duration,
  preciseDuration,
  repoName,
  runTime,
} from '../view/format.js';
import { NotFound } from './not-found.js';

type Tab = 'log' | 'changes' | 'attempts';

/** Where a task came from, in words. */
const ORIGINS: Record<TaskView['origin']['kind'], string> = {
  api: 'the API',
  page: 'this page',
  cli: 'the patchbay command',
  mcp: 'an MCP client',
  schedule: 'a schedule',
  mention: 'a mention',
};

const FORGES = { github: 'GitHub', gitlab: 'GitLab', gitea: 'Gitea' } as const;

/** Where the task came from; a mention links back to its comment (web links only). */
function Origin({ origin }: { origin: TaskView['origin'] }) {
  const m = origin.mention;
  if (origin.kind !== 'mention' || m === undefined) return <>{ORIGINS[origin.kind]}</>;
  const thread = `${m.repo}${m.pullRequest ? ' pull request' : ''} #${m.number}`;
  const text = `a mention by @${m.author} on ${FORGES[m.forge]}, ${thread}`;
  return /^https?:\/\//i.test(m.url) ? (
    <a class="origin" href={m.url} target="_blank" rel="noopener noreferrer">
      {text}
    </a>
  ) : (
    <>{text}</>
  );
}

const ended = (task: TaskView): boolean =>
  task.status === 'succeeded' || task.status === 'failed' || task.status === 'cancelled';

function TimingList({ timings }: { timings: Timings }) {
  const rows: [string, number | null, (string | undefined)?][] = [
    ['queued', timings.queuedMs],
    ['fetch', timings.fetchMs],
    ['sandbox', timings.provisionMs, timings.workspacePreloaded ? 'preloaded' : undefined],
    ['setup', timings.setupMs, timings.setupCached ? 'cached' : undefined],
    ['agent', timings.agentMs],
    ['verify', timings.verifyMs],
  ];
  return (
    <dl class="timings">
      {rows
        .filter(([, ms]) => ms !== null)
        .map(([name, ms, note]) => (
          <div key={name}>
            <dt>{name}</dt>
            <dd>
              {preciseDuration(ms!)}
              {note ? ` (${note})` : ''}
            </dd>
          </div>
        ))}
    </dl>
  );
}

/** One task: its header, live log, diff, attempts, and the follow-up box. */
export function TaskPage({ id }: { id: string }) {
  const [task, setTask] = useState<TaskView | null>(null);
  const [missing, setMissing] = useState(false);
  const [log, setLog] = useState<FoldedLog>(EMPTY_LOG);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [patch, setPatch] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>('log');
  const [notice, setNotice] = useState<string | null>(null);
  const [reply, setReply] = useState('');
  const [replyError, setReplyError] = useState<string | null>(null);
  const now = useNow();
  const patchFor = useRef<string | null>(null);

  const load = async (): Promise<void> => {
    try {
      setTask(await api.get(id));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) setMissing(true);
      else throw err;
    }
  };
  usePoll(load, 3000, [id]);

  useEffect(() => {
    const abort = new AbortController();
    followEvents(id, {
      after: 0,
      signal: abort.signal,
      onConnection: setConnection,
      onEvents: (events) => {
        setLog((log) => foldEvents(log, events));
        // A status or attempt event changes the record: read it now rather than at the next poll.
        if (events.some((e) => e.type === 'status' || e.type === 'attempt')) void load();
      },
    }).catch((err: unknown) => {
      if (err instanceof ApiError && err.status === 404) setMissing(true);
    });
    return () => abort.abort();
  }, [id]);

  // The patch, read again whenever a turn leaves a new one.
  const patchVersion = task?.result
    ? `${task.turn}:${task.finishedAt}:${task.result.patchBytes}`
    : null;
  useEffect(() => {
    if (patchVersion === null || patchFor.current === patchVersion) return;
    patchFor.current = patchVersion;
    api.patch(id).then(setPatch, () => {
      patchFor.current = null;
    });
  }, [id, patchVersion]);

  if (missing) return <NotFound what={`There is no task ${id} (or it is not yours).`} />;
  if (!task) return <p class="muted">Loading…</p>;

  const ran = runTime(task, now);
  const verify = task.result?.verify ?? null;
  const command = applyCommand(window.location.origin, task.id, session.key() !== null);

  const download = async (): Promise<void> => {
    const text = await api.patch(task.id);
    const url = URL.createObjectURL(new Blob([text], { type: 'text/x-diff' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `${task.id}.diff`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };

  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(command);
      setNotice('Command copied.');
    } catch {
      const input = document.getElementById('apply-command') as HTMLInputElement | null;
      input?.select();
      setNotice('Select the command and copy it.');
    }
  };

  const cancel = async (): Promise<void> => {
    try {
      setTask(await api.cancel(task.id));
    } catch (err) {
      setNotice(err instanceof ApiError ? err.message : 'the API does not answer');
    }
  };

  const sendReply = async (e: Event): Promise<void> => {
    e.preventDefault();
    setReplyError(null);
    try {
      setTask(await api.followUp(task.id, reply));
      setReply('');
      setTab('log');
    } catch (err) {
      setReplyError(err instanceof ApiError ? err.message : 'the API does not answer');
    }
  };

  const tabs: [Tab, string][] = [
    ['log', 'Log'],
    ['changes', `Changes${task.result ? ` (${task.result.files.length})` : ''}`],
    ...(task.attempts > 1 ? [['attempts', `Attempts (${task.attempts})`] as [Tab, string]] : []),
  ];

  return (
    <article class="task" aria-labelledby="task-title">
      <header class="task-header card">
        <div class="title-row">
          <StatusChip status={task.status} phase={task.phase} />
          <h1 id="task-title">{task.prompt.trim().split('\n', 1)[0]}</h1>
        </div>
        <dl class="facts">
          <div>
            <dt>Repository</dt>
            <dd class="mono">
              {repoName(task.repo.url)}
              {task.repo.ref ? `@${task.repo.ref}` : ''}
            </dd>
          </div>
          <div>
            <dt>Base commit</dt>
            <dd class="mono" title={task.baseCommit ?? undefined}>
              {task.baseCommit ? task.baseCommit.slice(0, 12) : '—'}
            </dd>
          </div>
          <div>
            <dt>Task</dt>
            <dd class="mono">{task.id}</dd>
          </div>
          <div>
            <dt>Turn</dt>
            <dd>{task.turn}</dd>
          </div>
          <div>
            <dt>Duration</dt>
            <dd>{ran === null ? '—' : duration(ran)}</dd>
          </div>
          <div>
            <dt>Model</dt>
            <dd class="mono">{task.model.name}</dd>
          </div>
          <div>
            <dt>Agent</dt>
            <dd>{task.agent.runtime === 'codex' ? 'Codex CLI' : 'Patchbay'}</dd>
          </div>
          <div>
            <dt>From</dt>
            <dd>
              <Origin origin={task.origin} />
            </dd>
          </div>
          <div>
            <dt>Tokens</dt>
            <dd>
              {count(task.usage.inputTokens)} in ({count(task.usage.cachedInputTokens)} cached) ·{' '}
              {count(task.usage.outputTokens)} out · {task.usage.modelCalls} calls ·{' '}
              {task.usage.toolCalls} tools
            </dd>
          </div>
        </dl>
        {task.timings && <TimingList timings={task.timings} />}
        {task.error && (
          <p class="notice error" role="alert">
            {task.error.code}: {task.error.message}
          </p>
        )}
        {verify && (
          <details class={`verify ${verify.passed ? 'passed' : 'failed'}`}>
            <summary>
              Verify {verify.passed ? 'passed' : `failed (exit ${verify.exitCode ?? 'none'})`}:{' '}
              <code>{verify.command}</code>
            </summary>
            <pre>{verify.output}</pre>
          </details>
        )}
        {task.result?.summary && <p class="summary">{task.result.summary}</p>}
        <div class="actions">
          {!ended(task) && (
            <button type="button" class="danger" onClick={() => void cancel()}>
              Cancel task
            </button>
          )}
          {task.result && (
            <button type="button" onClick={() => void download()}>
              Download patch
            </button>
          )}
          {task.result && (
            <span class="copy">
              <label class="visually-hidden" for="apply-command">
                Command that applies the patch
              </label>
              <input id="apply-command" class="mono" readOnly value={command} />
              <button type="button" onClick={() => void copy()}>
                Copy <code>git apply</code> command
              </button>
            </span>
          )}
          <span role="status" class="muted small">
            {notice}
          </span>
        </div>
      </header>

      <div class="tabs">
        <div role="tablist" aria-label="Task views">
          {tabs.map(([value, label]) => (
            <button
              key={value}
              type="button"
              role="tab"
              id={`tab-${value}`}
              aria-selected={tab === value}
              aria-controls={`panel-${value}`}
              tabIndex={tab === value ? 0 : -1}
              onClick={() => setTab(value)}
              onKeyDown={(e) => {
                const i = tabs.findIndex(([t]) => t === tab);
                const next =
                  e.key === 'ArrowRight'
                    ? i + 1
                    : e.key === 'ArrowLeft'
                      ? i - 1 + tabs.length
                      : null;
                if (next === null) return;
                const [target] = tabs[next % tabs.length]!;
                setTab(target);
                document.getElementById(`tab-${target}`)?.focus();
              }}
            >
              {label}
            </button>
          ))}
        </div>
        <span class={`connection connection-${connection}`} aria-live="polite">
          {connection === 'open' ? 'live' : connection}
        </span>
      </div>

      <section
        id={`panel-${tab}`}
        role="tabpanel"
        aria-labelledby={`tab-${tab}`}
        class="panel card"
      >
        {tab === 'log' && (
          <>
            {log.plan && (
              <aside class="current-plan" aria-label="Plan">
                <h2>Plan</h2>
                <PlanView steps={log.plan} />
              </aside>
            )}
            <EventLog log={log} />
            {ended(task) && task.status !== 'cancelled' && (
              <form class="follow-up" onSubmit={(e) => void sendReply(e)}>
                <label for="follow-up">Follow-up</label>
                <textarea
                  id="follow-up"
                  rows={3}
                  value={reply}
                  placeholder="What next? The agent continues from where this turn left the code."
                  aria-invalid={replyError !== null}
                  aria-describedby={replyError ? 'follow-up-error' : undefined}
                  onInput={(e) => setReply(e.currentTarget.value)}
                />
                {replyError && (
                  <p id="follow-up-error" class="field-error">
                    {replyError}
                  </p>
                )}
                <button type="submit" class="primary" disabled={reply.trim() === ''}>
                  Send
                </button>
              </form>
            )}
          </>
        )}
        {tab === 'changes' &&
          (patch === null ? (
            <p class="muted">
              {task.result
                ? 'Loading the patch…'
                : 'No patch yet: it comes when the agent is done.'}
            </p>
          ) : (
            <DiffView patch={patch} />
          ))}
        {tab === 'attempts' && (
          <Attempts
            taskId={task.id}
            version={`${task.turn}:${task.status}:${task.finishedAt}`}
            ended={ended(task)}
            selection={task.result?.selection ?? null}
            onChosen={() => void load()}
          />
        )}
      </section>
    </article>
  );
}
