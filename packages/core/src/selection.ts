import type { Attempt, Selection } from './task.js';

/** The rule, as stored with every selection. */
const RULE =
  'verify passed first; then fewest files touched and smallest patch; then fewest tokens';

const tokensOf = (attempt: Attempt): number =>
  attempt.usage.inputTokens + attempt.usage.outputTokens;

/**
 * Picks a turn's result among its ended attempts by evidence: an attempt with a collected patch
 * beats one without; then verify passed; then fewest files touched, then the smaller patch; then
 * fewer tokens; then the lower number. Null when no attempt collected a patch.
 */
export function selectAttempt(attempts: readonly Attempt[]): Selection | null {
  const ranked = [...attempts].sort(compare);
  const best = ranked[0];
  if (best === undefined || best.result === null) return null;
  return {
    rule: RULE,
    chosen: best.n,
    reason: reasonFor(best, ranked.slice(1)),
    ranking: ranked.map((attempt) => ({
      attempt: attempt.n,
      model: attempt.model,
      status: attempt.error?.code ?? attempt.status,
      verifyPassed: attempt.result?.verify?.passed ?? null,
      files: attempt.result?.files.length ?? null,
      patchBytes: attempt.result?.patchBytes ?? null,
      tokens: tokensOf(attempt),
    })),
    overruled: null,
  };
}

function compare(a: Attempt, b: Attempt): number {
  const has = (x: Attempt) => (x.result === null ? 1 : 0);
  const failedVerify = (x: Attempt) => (x.result?.verify?.passed === false ? 1 : 0);
  return (
    has(a) - has(b) ||
    failedVerify(a) - failedVerify(b) ||
    (a.result?.files.length ?? 0) - (b.result?.files.length ?? 0) ||
    (a.result?.patchBytes ?? 0) - (b.result?.patchBytes ?? 0) ||
    tokensOf(a) - tokensOf(b) ||
    a.n - b.n
  );
}

/** Why the best attempt won, against the runner-up. */
function reasonFor(best: Attempt, rest: readonly Attempt[]): string {
  const next = rest[0];
  const name = `attempt ${best.n} (${best.model})`;
  if (next === undefined) return `${name} is the only attempt`;
  const others = rest.filter((a) => a.result !== null);
  if (others.length === 0) return `${name} is the only attempt that produced a patch`;
  const passed = best.result?.verify?.passed;
  if (passed === true && others.every((a) => a.result?.verify?.passed === false))
    return `${name} is the only attempt whose verify passed`;
  const runnerUp = others[0]!;
  const why =
    passed === false && runnerUp.result?.verify?.passed === false
      ? 'no attempt passed verify; '
      : '';
  const bf = best.result?.files.length ?? 0;
  const rf = runnerUp.result?.files.length ?? 0;
  if (bf !== rf) return `${why}${name} touched fewer files (${bf} against ${rf})`;
  const bb = best.result?.patchBytes ?? 0;
  const rb = runnerUp.result?.patchBytes ?? 0;
  if (bb !== rb) return `${why}${name} has the smallest patch (${bb} bytes against ${rb})`;
  const bt = tokensOf(best);
  const rt = tokensOf(runnerUp);
  if (bt !== rt) return `${why}${name} used the fewest tokens (${bt} against ${rt})`;
  return `${why}${name} ties with attempt ${runnerUp.n} and has the lower number`;
}
