#!/usr/bin/env bash
# Installs the system packages the local stack needs, when they are missing.
source "$(dirname "$0")/lib.sh"

missing=()
has redis-server || missing+=(redis-server)
has redis-cli || missing+=(redis-tools)
has dockerd || missing+=(docker.io)
has docker || missing+=(docker.io)
has debootstrap || missing+=(debootstrap)
has git || missing+=(git)
# The webhook tests check the README's signature check, which uses it.
has openssl || missing+=(openssl)
# The second-host tests make network namespaces, veth pairs and bridges (ip) and run a host's
# processes in its namespace (nsenter).
has ip || missing+=(iproute2)
has nsenter || missing+=(util-linux)
# The test suite validates infra/compose.yaml with it.
has docker-compose || missing+=(docker-compose)

if [ ${#missing[@]} -gt 0 ]; then
  # shellcheck disable=SC2207
  missing=($(printf '%s\n' "${missing[@]}" | sort -u))
  apt_install "${missing[@]}"
fi
