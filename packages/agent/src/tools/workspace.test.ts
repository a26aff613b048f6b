import { describe, expect, it } from 'vitest';
import { ToolInputError, isInside, resolveWorkdir } from './workspace.js';

describe('resolveWorkdir', () => {
  it('defaults to the workspace', () => {
    expect(resolveWorkdir(undefined)).toBe('/workspace');
    expect(resolveWorkdir('  ')).toBe('/workspace');
  });

  it('takes paths relative to the workspace or absolute inside it', () => {
    expect(resolveWorkdir('packages/a')).toBe('/workspace/packages/a');
    expect(resolveWorkdir('./a/../b/')).toBe('/workspace/b');
    expect(resolveWorkdir('/workspace/src')).toBe('/workspace/src');
    expect(resolveWorkdir('/workspace')).toBe('/workspace');
    expect(resolveWorkdir('c', '/workspace', '/workspace/a/b')).toBe('/workspace/a/b/c');
  });

  it('refuses directories outside the workspace', () => {
    for (const dir of [
      '..',
      '../etc',
      'a/../../x',
      '/etc',
      '/workspace2',
      '/',
      '/workspace/../tmp',
    ]) {
      expect(() => resolveWorkdir(dir), dir).toThrow(ToolInputError);
    }
    expect(() => resolveWorkdir('../../x', '/workspace', '/workspace/a')).toThrow(/outside/);
  });

  it('isInside compares whole path components', () => {
    expect(isInside('/workspace', '/workspace/a')).toBe(true);
    expect(isInside('/workspace', '/workspace')).toBe(true);
    expect(isInside('/workspace', '/workspaces')).toBe(false);
  });
});
