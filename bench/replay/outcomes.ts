/**
 * What a test runner's output says about one test: the lines that name it, read by the marks
 * the common runners put on them. A name can be a test's title (jest, mocha, node:test, vitest
 * with a verbose reporter) or a test file (tap's summary line per file, vitest's per file).
 */
export type TestState = 'passed' | 'failed' | 'unseen';

/** Marks of a failed test: jest/vitest ✕ ×, node:test ✖, mocha's `1) title`, TAP's `not ok`, jest's `●` and vitest's `FAIL` headings. */
const FAILED = /✕|✖|×|\bnot ok\b|^\s*\d+\) |●|\bFAIL\b/;
/** Marks of a passed test: ✓ ✔, TAP's `ok N`, `PASS`. */
const PASSED = /✓|✔|^\s*ok \d+\b|\bPASS\b/;
/** tap's classic summary of a file: `test/x.js ........ 103/104`. */
const COUNTS = /\s(\d+)\/(\d+)(?:\s|$)/;

export function testState(output: string, name: string): TestState {
  let passed = false;
  for (const line of output.split('\n')) {
    if (!line.includes(name)) continue;
    const counts = COUNTS.exec(line.slice(line.indexOf(name) + name.length));
    if (FAILED.test(line) || (counts !== null && counts[1] !== counts[2])) return 'failed';
    if (PASSED.test(line) || counts !== null) passed = true;
  }
  return passed ? 'passed' : 'unseen';
}
