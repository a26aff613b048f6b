import { describe, expect, it } from 'vitest';
import { applyCommand, duration, fieldErrors, repoName, runTime } from './format.js';

describe('fieldErrors', () => {
  it('puts a refusal naming its field there, or on the form when the form does not draw it', () => {
    const cron = { code: 'validation_error', message: 'bad pattern', details: { field: 'cron' } };
    expect(fieldErrors(cron)).toEqual({ cron: 'bad pattern' });
    expect(fieldErrors(cron, ['cron', 'timezone'])).toEqual({ cron: 'bad pattern' });
    expect(
      fieldErrors(
        {
          code: 'policy_refused',
          message: 'at most 600',
          details: { field: 'limits.timeoutSeconds' },
        },
        ['prompt'],
      ),
    ).toEqual({ '': 'limits.timeoutSeconds: at most 600' });
  });

  it('puts a schema refusal on the field its path names', () => {
    expect(
      fieldErrors({
        code: 'validation_error',
        message: 'the request does not match the schema',
        details: [
          { where: 'body', path: '/prompt', message: 'must not be blank' },
          { where: 'body', path: '/repo/url', message: 'too short' },
          { where: 'body', path: '/prompt', message: 'too long' },
        ],
      }),
    ).toEqual({ prompt: 'must not be blank; too long', 'repo.url': 'too short' });
  });

  it('puts a refused repository URL on the URL field', () => {
    expect(fieldErrors({ code: 'repo_url_refused', message: 'private address' })).toEqual({
      'repo.url': 'private address',
    });
  });

  it("keeps anything else as the form's own error", () => {
    expect(fieldErrors({ code: 'rate_limited', message: 'slow down' })).toEqual({
      '': 'slow down',
    });
    expect(fieldErrors({ code: 'validation_error', message: 'bad JSON', details: 'x' })).toEqual({
      '': 'bad JSON',
    });
  });
});

describe('formatting', () => {
  it('says durations to a glance', () => {
    expect(duration(0)).toBe('0 s');
    expect(duration(59_400)).toBe('59 s');
    expect(duration(95_000)).toBe('1 min 35 s');
    expect(duration(45 * 60_000)).toBe('45 min');
    expect(duration(3 * 3600_000 + 5 * 60_000)).toBe('3 h 5 min');
    expect(duration(5 * 86_400_000)).toBe('5 d');
  });

  it('measures a run to its end, or to now while it runs', () => {
    const started = { startedAt: '2026-11-29T10:00:00Z', finishedAt: null };
    expect(runTime(started, Date.parse('2026-11-29T10:00:30Z'))).toBe(30_000);
    expect(runTime({ ...started, finishedAt: '2026-11-29T10:01:00Z' }, 0)).toBe(60_000);
    expect(runTime({ startedAt: null, finishedAt: null }, 0)).toBeNull();
  });

  it('names a repository without its scheme and .git', () => {
    expect(repoName('https://github.com/acme/app.git')).toBe('github.com/acme/app');
  });

  it('gives a command that fetches the patch with the key from the environment', () => {
    expect(applyCommand('http://127.0.0.1:8080', 'a b', true)).toBe(
      `curl -fsS -H "Authorization: Bearer $PATCHBAY_API_KEY" 'http://127.0.0.1:8080/v1/tasks/a%20b/patch' | git apply`,
    );
    expect(applyCommand('http://127.0.0.1:8080', 't1', false)).toBe(
      `curl -fsS 'http://127.0.0.1:8080/v1/tasks/t1/patch' | git apply`,
    );
  });
});
