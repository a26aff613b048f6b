import { describe, expect, it } from 'vitest';

import { ApplyPatchError } from './errors.js';
import { normalizePatchPath } from './paths.js';

describe('normalizePatchPath', () => {
  it.each([
    ['a.txt', 'a.txt'],
    ['./src/a.ts', 'src/a.ts'],
    ['src//nested/./a.ts', 'src/nested/a.ts'],
    ['src/x/../a.ts', 'src/a.ts'],
    ['dir/', 'dir'],
    ['..hidden/file', '..hidden/file'],
  ])('normalises %j to %j', (input, expected) => {
    expect(normalizePatchPath(input)).toBe(expected);
  });

  it.each([
    ['/etc/passwd', 'absolute paths are not allowed'],
    ['\\\\server\\share', 'absolute paths are not allowed'],
    ['C:\\Windows\\x', 'absolute paths are not allowed'],
    ['../outside.txt', 'leads outside the working directory'],
    ['a/../../outside.txt', 'leads outside the working directory'],
    ['.', 'does not name a file'],
    ['a/..', 'does not name a file'],
    ['', 'the path is empty'],
    ['a\0b', 'NUL byte'],
  ])('refuses %j', (input, reason) => {
    expect(() => normalizePatchPath(input)).toThrow(ApplyPatchError);
    expect(() => normalizePatchPath(input)).toThrow(reason);
  });
});
