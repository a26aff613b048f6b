#!/usr/bin/env bash
# Starts the Docker engine, unless one already answers.
source "$(dirname "$0")/lib.sh"

docker info >/dev/null 2>&1 && exit 0

is_root || die "the Docker engine is not running and only root can start it here: start dockerd (sudo systemctl start docker) and run this again."

say "starting dockerd (log $PATCHBAY_LOG_DIR/dockerd.log)"
# A stale pid file from a killed engine stops the next one from starting.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
setsid dockerd >>"$PATCHBAY_LOG_DIR/dockerd.log" 2>&1 </dev/null &
wait_until 60 "dockerd" docker info || die "dockerd did not answer within 60s; see $PATCHBAY_LOG_DIR/dockerd.log"
