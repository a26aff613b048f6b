/** "12 s", "4 min", "3 h", "2 d": how long ago or how long, to a glance's precision. */
export function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 60) return s % 60 === 0 || min >= 10 ? `${min} min` : `${min} min ${s % 60} s`;
  const h = Math.floor(min / 60);
  if (h < 48) return min % 60 === 0 || h >= 10 ? `${h} h` : `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d`;
}

/** Milliseconds as seconds with one decimal below a minute ("1.4 s"), else as `duration`. */
export function preciseDuration(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : duration(ms);
}

export function count(n: number): string {
  return n.toLocaleString('en-US');
}

/** The repository as a person names it: host/owner/name, without scheme or `.git`. */
export function repoName(url: string): string {
  return url.replace(/^[a-z+]+:\/\//i, '').replace(/\.git$/, '');
}

/** How long a task ran (to now while it runs); null before it started. */
export function runTime(
  task: { startedAt: string | null; finishedAt: string | null },
  now: number,
): number | null {
  if (!task.startedAt) return null;
  const end = task.finishedAt ? Date.parse(task.finishedAt) : now;
  return end - Date.parse(task.startedAt);
}

/**
 * The API's validation errors by form field: `details[].path` (`/repo/url`) and codes that
 * concern one field (`repo_url_refused`, a `details.field`) point at the field that caused
 * them; anything else, and a field the form does not draw (not in `drawn`, when given), is the
 * form's own error (key `''`).
 */
export function fieldErrors(
  error: {
    code: string;
    message: string;
    details?: unknown;
  },
  drawn?: readonly string[],
): Record<string, string> {
  const fields: Record<string, string> = {};
  const add = (where: string, message: string): void => {
    const field = drawn === undefined || drawn.includes(where) ? where : '';
    const said = field === '' && where !== '' ? `${where}: ${message}` : message;
    fields[field] = fields[field] ? `${fields[field]}; ${said}` : said;
  };
  if (error.code === 'repo_url_refused' || error.code === 'repo_unreachable') {
    add('repo.url', error.message);
    return fields;
  }
  if (error.code === 'validation_error' && Array.isArray(error.details)) {
    for (const detail of error.details as { path?: unknown; message?: unknown }[]) {
      const where = typeof detail.path === 'string' ? detail.path : '/';
      const field = where.replace(/^\//, '').replaceAll('/', '.');
      add(field, typeof detail.message === 'string' ? detail.message : 'invalid');
    }
    if (Object.keys(fields).length > 0) return fields;
  }
  // A refusal that names the one field it concerns (`details.field`, e.g. a bad cron pattern).
  const named = (error.details as { field?: unknown } | undefined)?.field;
  if (typeof named === 'string' && named !== '') {
    add(named, error.message);
    return fields;
  }
  add('', error.message);
  return fields;
}

/** The shell line that applies a task's patch to a checkout of its base commit. */
export function applyCommand(origin: string, id: string, withKey: boolean): string {
  const auth = withKey ? ' -H "Authorization: Bearer $PATCHBAY_API_KEY"' : '';
  return `curl -fsS${auth} '${origin}/v1/tasks/${encodeURIComponent(id)}/patch' | git apply`;
}
