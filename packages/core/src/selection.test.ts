import { describe, expect, it } from 'vitest';
import { selectAttempt } from './selection.js';
import { EMPTY_USAGE, type Attempt } from './task.js';

function attempt(
  n: number,
  outcome: { verify?: boolean | null; files?: number; bytes?: number; tokens?: number } | null,
): Attempt {
  return {
    n,
    model: `m${n}`,
    status: outcome === null ? 'failed' : 'succeeded',
    startedAt: null,
    finishedAt: null,
    tries: 1,
    worker: null,
    timings: null,
    usage: { ...EMPTY_USAGE, inputTokens: outcome?.tokens ?? 100 },
    error: outcome === null ? { code: 'model_error', message: 'x' } : null,
    result:
      outcome === null
        ? null
        : {
            summary: null,
            files: Array.from({ length: outcome.files ?? 1 }, (_, i) => ({
              path: `f${i}`,
              status: 'added' as const,
              additions: 1,
              deletions: 0,
            })),
            additions: 1,
            deletions: 0,
            patchBytes: outcome.bytes ?? 100,
            verify:
              outcome.verify === null || outcome.verify === undefined
                ? null
                : {
                    command: 't',
                    exitCode: outcome.verify ? 0 : 1,
                    passed: outcome.verify,
                    output: '',
                  },
          },
    changes: null,
  };
}

describe('selectAttempt', () => {
  it('prefers a passing verify over anything smaller', () => {
    const s = selectAttempt([
      attempt(1, { verify: false, files: 1, bytes: 10 }),
      attempt(2, { verify: true, files: 5, bytes: 9000 }),
    ]);
    expect(s).toMatchObject({
      chosen: 2,
      reason: 'attempt 2 (m2) is the only attempt whose verify passed',
    });
    expect(s?.ranking.map((r) => r.attempt)).toEqual([2, 1]);
  });

  it('then fewest files, then the smaller patch, then fewer tokens, then the lower number', () => {
    expect(
      selectAttempt([
        attempt(1, { verify: true, files: 3 }),
        attempt(2, { verify: true, files: 2 }),
      ]),
    ).toMatchObject({ chosen: 2, reason: 'attempt 2 (m2) touched fewer files (2 against 3)' });
    expect(
      selectAttempt([
        attempt(1, { bytes: 300 }),
        attempt(2, { bytes: 200 }),
        attempt(3, { bytes: 250 }),
      ]),
    ).toMatchObject({
      chosen: 2,
      reason: 'attempt 2 (m2) has the smallest patch (200 bytes against 250)',
    });
    expect(selectAttempt([attempt(1, { tokens: 900 }), attempt(2, { tokens: 500 })])).toMatchObject(
      {
        chosen: 2,
        reason: 'attempt 2 (m2) used the fewest tokens (500 against 900)',
      },
    );
    expect(selectAttempt([attempt(2, {}), attempt(1, {})])).toMatchObject({
      chosen: 1,
      reason: 'attempt 1 (m1) ties with attempt 2 and has the lower number',
    });
  });

  it('says when no attempt passed verify, puts attempts without a patch last, and picks none of none', () => {
    const s = selectAttempt([
      attempt(1, null),
      attempt(2, { verify: false, files: 2 }),
      attempt(3, { verify: false, files: 1 }),
    ]);
    expect(s).toMatchObject({
      chosen: 3,
      reason: 'no attempt passed verify; attempt 3 (m3) touched fewer files (1 against 2)',
    });
    expect(s?.ranking.at(-1)).toMatchObject({ attempt: 1, status: 'model_error', files: null });
    expect(selectAttempt([attempt(1, null), attempt(2, {})])?.reason).toBe(
      'attempt 2 (m2) is the only attempt that produced a patch',
    );
    expect(selectAttempt([attempt(1, null), attempt(2, null)])).toBeNull();
  });
});
