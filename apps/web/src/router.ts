import { useEffect, useState } from 'preact/hooks';

/**
 * The page a location hash names: `#/`, `#/new`, `#/tasks/<id>`, `#/schedules`; anything else is
 * unknown.
 */
export type Route =
  | { page: 'tasks' }
  | { page: 'new' }
  | { page: 'schedules' }
  | { page: 'task'; id: string }
  | { page: 'unknown'; hash: string };

export function routeOf(hash: string): Route {
  const path = hash.replace(/^#/, '') || '/';
  if (path === '/') return { page: 'tasks' };
  if (path === '/new') return { page: 'new' };
  if (path === '/schedules') return { page: 'schedules' };
  const task = /^\/tasks\/([^/?#]+)$/.exec(path);
  if (task) {
    try {
      return { page: 'task', id: decodeURIComponent(task[1]!) };
    } catch {
      // A malformed escape is no task of anyone's.
    }
  }
  return { page: 'unknown', hash: path };
}

export const hrefOf = {
  tasks: '#/',
  newTask: '#/new',
  schedules: '#/schedules',
  task: (id: string) => `#/tasks/${encodeURIComponent(id)}`,
};

export function navigate(href: string): void {
  window.location.hash = href;
}

/** The current route, following the location hash. */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => routeOf(window.location.hash));
  useEffect(() => {
    const onChange = (): void => setRoute(routeOf(window.location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
