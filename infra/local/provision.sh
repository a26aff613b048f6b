#!/usr/bin/env bash
# Brings up everything Patchbay needs on this machine, installing what is missing:
# npm dependencies, the web page's build, Redis (AOF, noeviction), the Docker engine and the
# sandbox image.
# Idempotent: what is already there and answering is left alone.
here=$(dirname "$0")
source "$here/lib.sh"

bash "$here/node-deps.sh"
bash "$here/web.sh"
bash "$here/system-packages.sh"
bash "$here/redis.sh"
bash "$here/docker.sh"
bash "$here/images.sh"
