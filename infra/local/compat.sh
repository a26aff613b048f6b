#!/usr/bin/env bash
# `npm run test:compat`: the compatibility suite against a real llama.cpp server. Builds
# llama-server once (infra/local/llama-server.sh, cached under $PATCHBAY_HOME/llama), then runs
# test/compat through the same runner as `npm test`. Extra arguments go to vitest.
here=$(dirname "$0")
source "$here/lib.sh"
bash "$here/provision.sh"
PATCHBAY_LLAMA_SERVER=$(bash "$here/llama-server.sh")
export PATCHBAY_LLAMA_SERVER
exec bash "$here/test.sh" --config vitest.compat.config.ts "$@"
