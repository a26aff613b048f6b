#!/usr/bin/env bash
# `npm test`: provision what is missing, then run the whole suite (unit and end-to-end), and the
# sandbox suites (the sandbox package, the hostile repositories and tasks, the codex runtime and
# allowlist networks) once more under gVisor and once more on a remote engine: a TLS-only second
# dockerd.
# Extra arguments go to vitest, e.g. `npm test -- packages/sandbox` (then no second pass).
here=$(dirname "$0")
source "$here/lib.sh"
bash "$here/provision.sh"
bash "$here/runsc.sh"
bash "$here/browser.sh"
cd "$PATCHBAY_ROOT"

reports=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-vitest.XXXXXX")
trap 'rm -rf "$reports"' EXIT
status=0
npx vitest run --reporter=default --reporter=json --outputFile.json="$reports/all.json" "$@" || status=$?
if [ $# -eq 0 ]; then
  say "the sandbox suites again, every sandbox under gVisor (PATCHBAY_SANDBOX_RUNTIME=runsc)"
  PATCHBAY_SANDBOX_RUNTIME=runsc npx vitest run --reporter=default --reporter=json \
    --outputFile.json="$reports/runsc.json" packages/sandbox test/hostile test/e2e/codex.test.ts \
    test/e2e/egress.test.ts || status=$?
  node --import tsx test/support/remote-engine-pass.ts --reporter=default --reporter=json \
    --outputFile.json="$reports/remote.json" packages/sandbox test/hostile test/e2e/codex.test.ts \
    test/e2e/egress.test.ts || status=$?
fi
# One plain closing line for both passes, whatever the reporter printed above it.
node -e '
  const fs = require("fs");
  let passed = 0, failed = 0, skipped = 0;
  for (const file of process.argv.slice(1)) {
    if (!fs.existsSync(file)) continue;
    const r = JSON.parse(fs.readFileSync(file, "utf8"));
    passed += r.numPassedTests; failed += r.numFailedTests; skipped += r.numPendingTests + r.numTodoTests;
  }
  console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$reports/all.json" "$reports/runsc.json" "$reports/remote.json" 2>/dev/null || true
exit "$status"
