#!/usr/bin/env bash
# Builds the web page (apps/web/dist, served by the API at /) when it is missing or older
# than anything it is built from.
source "$(dirname "$0")/lib.sh"
cd "$PATCHBAY_ROOT"

built=apps/web/dist/index.html
if [ -f "$built" ] && [ -z "$(find apps/web/src apps/web/index.html apps/web/vite.config.ts \
  apps/web/package.json package-lock.json -newer "$built" -print -quit)" ]; then
  exit 0
fi
say "building the web page (apps/web)"
npm run build --workspace @patchbay/web >"$PATCHBAY_LOG_DIR/web-build.log" 2>&1 ||
  { tail -20 "$PATCHBAY_LOG_DIR/web-build.log" >&2; die "the web page did not build; see $PATCHBAY_LOG_DIR/web-build.log"; }
