#!/usr/bin/env bash
# Builds the sandbox image when it is missing or its build context changed.
# No registry is reachable, so the base is a Debian root filesystem made by debootstrap and
# imported into the engine once; the sandbox Dockerfile builds on top of it.
source "$(dirname "$0")/lib.sh"

base_image=${PATCHBAY_BASE_IMAGE:-patchbay/base:bookworm}
sandbox_image=${PATCHBAY_SANDBOX_IMAGE:-patchbay/sandbox:latest}
mirror=${PATCHBAY_DEBIAN_MIRROR:-http://deb.debian.org/debian}

image_label() { docker image inspect -f "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }
context_hash() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16); }

if ! docker image inspect "$base_image" >/dev/null 2>&1; then
  rootfs=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-rootfs.XXXXXX")
  trap 'rm -rf "$rootfs"' EXIT
  say "bootstrapping Debian bookworm into $rootfs (once; log $PATCHBAY_LOG_DIR/debootstrap.log)"
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >>"$PATCHBAY_LOG_DIR/debootstrap.log" 2>&1 ||
    die "debootstrap failed; see $PATCHBAY_LOG_DIR/debootstrap.log"
  cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
deb ${mirror%/debian}/debian-security bookworm-security main
SOURCES
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  say "importing $base_image"
  tar -C "$rootfs" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8' \
    -c 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

# build IMAGE CONTEXT: builds from a copy of CONTEXT with the host's extra certificate
# authorities in ca-certificates/, so that package installs work behind a TLS-inspecting proxy.
build() {
  local image=$1 context=$2 name hash staged log
  name=$(basename "$context")
  log="$PATCHBAY_LOG_DIR/build-$name.log"
  staged=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-context.XXXXXX")
  cp -a "$context/." "$staged/"
  mkdir -p "$staged/ca-certificates"
  find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$staged/ca-certificates/" \; 2>/dev/null || true
  hash=$(context_hash "$staged")
  if [ "$(image_label "$image" patchbay.context-hash)" != "$hash" ]; then
    say "building $image from $context (log $log)"
    if ! docker build --build-arg "BASE_IMAGE=$base_image" --label "patchbay.context-hash=$hash" \
      -t "$image" "$staged" >"$log" 2>&1; then
      rm -rf "$staged"
      die "building $image failed; see $log"
    fi
  fi
  rm -rf "$staged"
}

build "$sandbox_image" "$PATCHBAY_ROOT/docker/sandbox"
