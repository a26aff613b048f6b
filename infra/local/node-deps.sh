#!/usr/bin/env bash
# Installs the project's npm dependencies when node_modules is missing or older than the lock file.
source "$(dirname "$0")/lib.sh"
cd "$PATCHBAY_ROOT"

stamp=node_modules/.package-lock.json
if [ -f "$stamp" ] && [ ! package-lock.json -nt "$stamp" ] && [ ! package.json -nt "$stamp" ]; then
  exit 0
fi
say "installing npm dependencies (npm ci)"
npm ci --no-audit --no-fund --loglevel=error >"$PATCHBAY_LOG_DIR/npm-ci.log" 2>&1 ||
  { tail -20 "$PATCHBAY_LOG_DIR/npm-ci.log" >&2; die "npm ci failed; see $PATCHBAY_LOG_DIR/npm-ci.log"; }
