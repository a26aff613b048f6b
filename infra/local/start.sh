#!/usr/bin/env bash
# `npm start`: provision what is missing, then run the API and a worker in the foreground.
here=$(dirname "$0")
source "$here/lib.sh"
bash "$here/provision.sh"
cd "$PATCHBAY_ROOT"
exec node --import tsx infra/local/serve.ts
