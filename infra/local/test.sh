#!/usr/bin/env bash
# `npm test`: provision what is missing, then run the whole suite (unit and end-to-end).
# Extra arguments go to vitest, e.g. `npm test -- packages/sandbox`.
here=$(dirname "$0")
source "$here/lib.sh"
bash "$here/provision.sh"
bash "$here/browser.sh"
cd "$PATCHBAY_ROOT"

report=$(mktemp "${TMPDIR:-/tmp}/patchbay-vitest.XXXXXX.json")
trap 'rm -f "$report"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# One plain closing line, whatever the reporter printed above it.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$report" 2>/dev/null || true
exit "$status"
