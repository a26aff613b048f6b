#!/usr/bin/env bash
# Builds llama.cpp's `llama-server` (a real OpenAI-compatible server) once and caches it under
# $PATCHBAY_HOME/llama/<version>/. No prebuilt binary or weights can be downloaded here: the source
# comes from the npm package node-llama-cpp, which ships the whole llama.cpp tree as a git bundle.
# Prints the binary's path on stdout. About 12 minutes on 2 cores the first time, instant after.
source "$(dirname "$0")/lib.sh"

version=${PATCHBAY_LLAMA_PACKAGE_VERSION:-3.21.1}
dir="$PATCHBAY_HOME/llama/$version"
bin="$dir/llama-server"
log="$PATCHBAY_LOG_DIR/build-llama-server.log"

if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
  echo "$bin"
  exit 0
fi

has cmake || apt_install cmake
has g++ || apt_install g++
has git || apt_install git

work=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-llama.XXXXXX")
trap 'rm -rf "$work"' EXIT
say "building llama-server from node-llama-cpp@$version (once, ~12 min on 2 cores; log $log)"
(
  cd "$work"
  npm pack --silent "node-llama-cpp@$version" >"$log" 2>&1
  tar -xzf node-llama-cpp-*.tgz package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  git clone -q package/llama/gitRelease.bundle src >>"$log" 2>&1
  cmake -S src -B build -DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >>"$log" 2>&1
  cmake --build build --target llama-server -j "$(nproc)" >>"$log" 2>&1
  mkdir -p "$dir"
  # The chat templates ship with the source; the compatibility suite picks one for its model.
  cp -r src/models/templates "$dir/templates"
  cp src/models/ggml-vocab-qwen2.gguf "$dir/"
  cp package/llama/llama.cpp.info.json "$dir/"
  install -m 0755 build/bin/llama-server "$bin.tmp"
  mv "$bin.tmp" "$bin"
) || die "building llama-server failed; see $log"
echo "$bin"
