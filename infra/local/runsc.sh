#!/usr/bin/env bash
# Registers gVisor (Debian's `runsc`) as the Docker engine's runtime `runsc`, installing it when
# missing. provision.sh runs this when PATCHBAY_SANDBOX_RUNTIME=runsc; `npm test` always does
# (the sandbox suites run under runc and runsc).
#
# runsc runs here with --network=host: gVisor then serves the container's sockets from the
# network namespace the engine made for it (only loopback for a sandbox without network)
# instead of its own network stack, which Debian's runsc (2022) refuses to start in the
# engine's namespaces on this kind of machine. Every other syscall still meets gVisor's kernel.
source "$(dirname "$0")/lib.sh"

registered() { docker info --format '{{json .Runtimes}}' 2>/dev/null | grep -q '"runsc"'; }
registered && exit 0

has runsc || apt_install runsc
is_root || die "registering runsc with the Docker engine needs root (it edits /etc/docker/daemon.json)"

config=/etc/docker/daemon.json
mkdir -p /etc/docker
say "registering runsc (gVisor) with the Docker engine ($config)"
# Merged into whatever the file holds already; the engine reloads runtimes on SIGHUP.
node -e '
  const fs = require("fs");
  const [file, path] = process.argv.slice(1);
  let config = {};
  try { config = JSON.parse(fs.readFileSync(file, "utf8")); } catch (err) { if (err.code !== "ENOENT") throw err; }
  config.runtimes = { ...config.runtimes, runsc: { path, runtimeArgs: ["--network=host"] } };
  fs.writeFileSync(file, JSON.stringify(config, null, 2) + "\n");
' "$config" "$(command -v runsc)"
pid=$(cat /var/run/docker.pid 2>/dev/null || pidof dockerd || true)
[ -n "$pid" ] || die "no dockerd to reload; start it (bash infra/local/docker.sh) and run this again"
kill -HUP "$pid"
wait_until 30 "the runsc runtime" registered || die "dockerd did not pick up runsc; see $PATCHBAY_LOG_DIR/dockerd.log"
