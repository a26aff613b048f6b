import { describe, expect, it } from 'vitest';
import { parseChanges, splitRawNumstat } from './collect.js';

describe('splitRawNumstat', () => {
  it('turns one --raw --numstat -z pass into name-status and numstat, renames and odd names included', () => {
    const z = '0'.repeat(7);
    const raw = [
      `:100644 100644 1904230 9e73d26 M`,
      'a',
      `:100644 100644 96cc558 96cc558 R100`,
      'b',
      ':b2',
      `:100644 000000 587be6b ${z} D`,
      'c',
      `:000000 100644 ${z} 3e75765 A`,
      'd',
    ];
    const numstat = ['1\t0\ta', '0\t0\t', 'b', ':b2', '0\t1\tc', '1\t0\td', ''];
    const split = splitRawNumstat([...raw, ...numstat].join('\0'));
    expect(split.nameStatus).toBe(['M', 'a', 'R100', 'b', ':b2', 'D', 'c', 'A', 'd'].join('\0'));
    expect(parseChanges(split.numstat, split.nameStatus)).toEqual([
      { path: 'a', status: 'modified', additions: 1, deletions: 0 },
      { path: ':b2', oldPath: 'b', status: 'renamed', additions: 0, deletions: 0 },
      { path: 'c', status: 'deleted', additions: 0, deletions: 1 },
      { path: 'd', status: 'added', additions: 1, deletions: 0 },
    ]);
  });

  it('reads an empty diff as no changes', () => {
    const split = splitRawNumstat('');
    expect(parseChanges(split.numstat, split.nameStatus)).toEqual([]);
  });
});
