# Shared helpers for the local provisioning scripts. Sourced, never run.
# Every script here is idempotent: it checks before it acts, so running it twice is cheap.

set -euo pipefail

PATCHBAY_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# Where logs and service data of the local stack live (the "known place").
PATCHBAY_HOME=${PATCHBAY_HOME:-${HOME:-/root}/.patchbay}
PATCHBAY_LOG_DIR="$PATCHBAY_HOME/logs"
mkdir -p "$PATCHBAY_LOG_DIR"

say() { printf 'patchbay: %s\n' "$*" >&2; }
die() { printf 'patchbay: error: %s\n' "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }
has() { command -v "$1" >/dev/null 2>&1; }

# wait_until SECONDS DESCRIPTION COMMAND...: polls COMMAND every half second.
wait_until() {
  local seconds=$1 what=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.5
  done
  say "$what is up"
}

# apt_install PACKAGE...: installs Debian packages, or says exactly what to install elsewhere.
apt_install() {
  if ! is_root || ! has apt-get; then
    die "missing system packages: $*. Install them with your package manager (Debian/Ubuntu: sudo apt-get install $*) and run this again."
  fi
  say "installing $* (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  # A fresh machine may have no package lists yet; refresh them once when an install fails.
  if ! apt-get install -y -qq --no-install-recommends "$@" >>"$PATCHBAY_LOG_DIR/apt.log" 2>&1; then
    apt-get update -qq >>"$PATCHBAY_LOG_DIR/apt.log" 2>&1
    apt-get install -y -qq --no-install-recommends "$@" >>"$PATCHBAY_LOG_DIR/apt.log" 2>&1 ||
      die "apt-get install $* failed; see $PATCHBAY_LOG_DIR/apt.log"
  fi
}
