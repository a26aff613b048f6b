#!/usr/bin/env bash
# Brings up everything Patchbay needs on this machine, installing what is missing:
# npm dependencies, the web page's build, Redis (AOF, noeviction), the Docker engine (with gVisor
# registered when PATCHBAY_SANDBOX_RUNTIME=runsc) and the sandbox image.
# Idempotent: what is already there and answering is left alone.
here=$(dirname "$0")
source "$here/lib.sh"

bash "$here/node-deps.sh"
bash "$here/web.sh"
bash "$here/system-packages.sh"
bash "$here/redis.sh"
bash "$here/docker.sh"
if [ "${PATCHBAY_SANDBOX_RUNTIME:-runc}" = runsc ]; then bash "$here/runsc.sh"; fi
bash "$here/images.sh"
