import { describe, expect, it } from 'vitest';
import { hrefOf, routeOf } from './router.js';

describe('routeOf', () => {
  it('reads the pages from the location hash', () => {
    expect(routeOf('')).toEqual({ page: 'tasks' });
    expect(routeOf('#/')).toEqual({ page: 'tasks' });
    expect(routeOf('#/new')).toEqual({ page: 'new' });
    expect(routeOf(hrefOf.schedules)).toEqual({ page: 'schedules' });
    expect(routeOf(hrefOf.task('a/b c'))).toEqual({ page: 'task', id: 'a/b c' });
  });

  it('knows no other page, and no malformed id', () => {
    expect(routeOf('#/tasks/')).toEqual({ page: 'unknown', hash: '/tasks/' });
    expect(routeOf('#/tasks/%E0%A4%A')).toEqual({ page: 'unknown', hash: '/tasks/%E0%A4%A' });
    expect(routeOf('#/admin')).toEqual({ page: 'unknown', hash: '/admin' });
  });
});
