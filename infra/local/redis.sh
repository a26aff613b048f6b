#!/usr/bin/env bash
# Starts a local Redis with AOF persistence and noeviction, unless one already answers.
source "$(dirname "$0")/lib.sh"

port=${PATCHBAY_REDIS_PORT:-6379}
data="$PATCHBAY_HOME/redis"

if redis-cli -p "$port" ping >/dev/null 2>&1; then
  # Someone else's Redis is fine as long as it will not evict or forget our data.
  redis-cli -p "$port" config set appendonly yes >/dev/null
  redis-cli -p "$port" config set maxmemory-policy noeviction >/dev/null
  redis-cli -p "$port" config set stream-node-max-bytes 1024 >/dev/null
  exit 0
fi

mkdir -p "$data"
say "starting redis-server on 127.0.0.1:$port (data $data, log $PATCHBAY_LOG_DIR/redis.log)"
redis-server --bind 127.0.0.1 --port "$port" --dir "$data" \
  --appendonly yes --appendfsync everysec --maxmemory-policy noeviction \
  --stream-node-max-bytes 1024 \
  --daemonize yes --logfile "$PATCHBAY_LOG_DIR/redis.log" --pidfile "$PATCHBAY_HOME/redis.pid" \
  --save "" >/dev/null
wait_until 30 "redis" redis-cli -p "$port" ping || die "redis did not answer within 30s; see $PATCHBAY_LOG_DIR/redis.log"
