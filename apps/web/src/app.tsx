import { useEffect, useState } from 'preact/hooks';
import { ApiError, UNAUTHORIZED_EVENT, api, session } from './api.js';
import { NewTask } from './pages/new-task.js';
import { NotFound } from './pages/not-found.js';
import { Schedules } from './pages/schedules.js';
import { SignIn } from './pages/sign-in.js';
import { TaskPage } from './pages/task.js';
import { TaskList } from './pages/task-list.js';
import { hrefOf, useRoute } from './router.js';

type Access = 'checking' | 'needs-key' | 'granted' | 'unreachable';

/**
 * The page: a header and the route's page. Whether a key is needed is asked of the API itself
 * (a server without keys answers without one); a key refused later brings the sign-in back.
 */
export function App() {
  const route = useRoute();
  const [access, setAccess] = useState<Access>('checking');
  const [refused, setRefused] = useState(false);

  const check = async (): Promise<void> => {
    try {
      await api.list({ limit: 1 });
      setAccess('granted');
    } catch (err) {
      setAccess(err instanceof ApiError && err.status === 401 ? 'needs-key' : 'unreachable');
    }
  };

  useEffect(() => {
    void check();
    const onUnauthorized = (): void => {
      setRefused(session.key() !== null);
      session.signOut();
      setAccess('needs-key');
    };
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, []);

  const signedIn = session.key() !== null;
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={hrefOf.tasks}>
          Patchbay
        </a>
        {access === 'granted' && (
          <nav aria-label="Main">
            <a href={hrefOf.tasks} aria-current={route.page === 'tasks' ? 'page' : undefined}>
              Tasks
            </a>
            <a href={hrefOf.newTask} aria-current={route.page === 'new' ? 'page' : undefined}>
              New task
            </a>
            <a
              href={hrefOf.schedules}
              aria-current={route.page === 'schedules' ? 'page' : undefined}
            >
              Schedules
            </a>
          </nav>
        )}
        {access === 'granted' && signedIn && (
          <button
            type="button"
            class="quiet"
            onClick={() => {
              session.signOut();
              setRefused(false);
              setAccess('needs-key');
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main id="main">
        {access === 'checking' && <p class="muted">Connecting…</p>}
        {access === 'unreachable' && (
          <div class="notice error" role="alert">
            <p>The API does not answer.</p>
            <button type="button" onClick={() => void check()}>
              Try again
            </button>
          </div>
        )}
        {access === 'needs-key' && (
          <SignIn
            refused={refused}
            onSignedIn={() => {
              setRefused(false);
              void check();
            }}
          />
        )}
        {access === 'granted' &&
          (route.page === 'tasks' ? (
            <TaskList />
          ) : route.page === 'new' ? (
            <NewTask />
          ) : route.page === 'schedules' ? (
            <Schedules />
          ) : route.page === 'task' ? (
            <TaskPage key={route.id} id={route.id} />
          ) : (
            <NotFound what={`There is no page ${route.hash}.`} />
          ))}
      </main>
    </>
  );
}
