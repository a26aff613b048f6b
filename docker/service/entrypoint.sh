#!/bin/sh
# Picks the process: `api`, `worker`, or any other command (a shell, for debugging).
# TypeScript runs through tsx's loader, as in development: there is no build step to drift from.
set -e
case "${1:-api}" in
  api) exec node --import tsx apps/api/src/main.ts ;;
  worker) exec node --import tsx apps/worker/src/main.ts ;;
  *) exec "$@" ;;
esac
