#!/usr/bin/env bash
# Builds the service image (API + worker) from the locally bootstrapped base image:
#   bash docker/service/build.sh [tag]        (default patchbay/service:latest)
# The base, patchbay/base:bookworm, is made by `npm run provision` (debootstrap + docker import);
# no registry is needed. The build context is staged from tracked and new source files only,
# so node_modules, tests, benchmarks and local data never reach the daemon.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-patchbay/service:latest}
base=${PATCHBAY_BASE_IMAGE:-patchbay/base:bookworm}
docker image inspect "$base" >/dev/null 2>&1 ||
  { echo "build.sh: base image $base is missing; run \`npm run provision\` first" >&2; exit 1; }

staged=$(mktemp -d "${TMPDIR:-/tmp}/patchbay-service.XXXXXX")
trap 'rm -rf "$staged"' EXIT
cd "$root"
cp package.json package-lock.json tsconfig.json docker/service/Dockerfile docker/service/entrypoint.sh "$staged/"
# Workspace manifests (for `npm ci`) apart from sources (for the final stage): layer caching.
git ls-files --cached --others --exclude-standard -- 'apps/*/package.json' 'packages/*/package.json' |
  while read -r f; do mkdir -p "$staged/manifests/$(dirname "$f")" && cp "$f" "$staged/manifests/$f"; done
git ls-files --cached --others --exclude-standard -- apps packages |
  grep -v -E '(\.test\.ts|\.fixture\.ts|/test-support\.ts)$' |
  while read -r f; do [ -f "$f" ] && mkdir -p "$staged/src/$(dirname "$f")" && cp -p "$f" "$staged/src/$f"; done
# The web page, built here (Vite is a development dependency) and served by the API from
# apps/web/dist.
bash infra/local/web.sh
mkdir -p "$staged/src/apps/web" && cp -r apps/web/dist "$staged/src/apps/web/dist"
mkdir -p "$staged/ca-certificates"
find /usr/local/share/ca-certificates -maxdepth 2 -name '*.crt' -exec cp {} "$staged/ca-certificates/" \; 2>/dev/null || true
docker build --build-arg "BASE_IMAGE=$base" -t "$tag" "$staged"
