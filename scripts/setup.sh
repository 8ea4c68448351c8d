#!/usr/bin/env bash
# Install what shale and its tests need on a fresh Debian machine, then build.
#   Debian packages: the OCI runtimes, overlay helpers, peers used by interop tests.
#   npm ci: pinned dependencies (better-sqlite3 compiles from source, about 80 s).
set -euo pipefail
cd "$(dirname "$0")/.."
PKGS="busybox-static skopeo umoci runc crun docker-registry fuse-overlayfs zstd attr curl docker.io docker-compose tini"
missing=""
for p in $PKGS; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
  else
    echo "missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
    exit 1
  fi
fi
[ -d node_modules/better-sqlite3/build/Release ] && [ -f node_modules/.package-lock.json ] || npm ci
npm run build
