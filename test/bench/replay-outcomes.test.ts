import { describe, expect, it } from 'vitest';
import { testState } from '../../bench/replay/outcomes.js';

/** Output shapes of the runners the replay instances use, failing and passing. */
describe('a test runner output read for one test', () => {
  it('jest, verbose', () => {
    const failing = ` FAIL  test/display.test.js
  ✓ Format no formatStr (5 ms)
  ✕ formats YYY as YY + Y (4 ms)

  ● formats YYY as YY + Y

    expect(received).toBe(expected)`;
    expect(testState(failing, 'formats YYY as YY + Y')).toBe('failed');
    expect(testState(failing, 'Format no formatStr')).toBe('passed');
    expect(testState(failing, 'Format with unknown token')).toBe('unseen');
  });

  it('mocha, spec reporter: the failure listed again at the end names no mark', () => {
    const failing = `  res
    .send(body)
      ✔ should send <p>hey</p>
      1) should accept Uint8Array

  1 passing (20ms)
  1 failing

  1) res
       .send(body)
         should accept Uint8Array:
     Error: expected 200 "OK", got 500`;
    expect(testState(failing, 'should accept Uint8Array')).toBe('failed');
    expect(testState(failing, 'should send <p>hey</p>')).toBe('passed');
  });

  it('node:test, TAP and spec', () => {
    const tap = `# Subtest: add adds
ok 1 - add adds
# Subtest: clamp caps values above hi
not ok 2 - clamp caps values above hi`;
    expect(testState(tap, 'add adds')).toBe('passed');
    expect(testState(tap, 'clamp caps values above hi')).toBe('failed');
    const spec = `✔ add adds (0.5ms)\n✖ clamp caps values above hi (1.2ms)`;
    expect(testState(spec, 'add adds')).toBe('passed');
    expect(testState(spec, 'clamp caps values above hi')).toBe('failed');
  });

  it('tap, one summary line per file', () => {
    expect(
      testState('test/ranges/subset.js ..................... 93/94\n', 'test/ranges/subset.js'),
    ).toBe('failed');
    expect(
      testState('test/ranges/subset.js ..................... 94/94 1s\n', 'test/ranges/subset.js'),
    ).toBe('passed');
  });

  it('vitest, verbose: a file fails when one of its tests does', () => {
    const failing = ` ✓ test/base.test.ts > withBase > withBase("/", "/") 1ms
 × test/base.test.ts > withBase > withBase("/admin/", "/admin-dashboard") 3ms`;
    expect(testState(failing, 'test/base.test.ts')).toBe('failed');
    expect(testState(' ✓ test/base.test.ts > withBase > x 1ms', 'test/base.test.ts')).toBe(
      'passed',
    );
  });
});
