#!/usr/bin/env bash
# The main job, offline: set up, make a busybox base image from Debian's busybox-static,
# build the example Dockerfile on it and run a container from the result.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
ROOT="${SHALE_ROOT:-/tmp/shale-quickstart}"
shale() { node bin/shale.js --root "$ROOT" "$@"; }
shale images -q busybox:latest | grep -q . || shale bootstrap busybox
shale build -t example examples/sample
shale history example
shale run --rm example
