#!/usr/bin/env bash
# Engine API benchmark: the same docker CLI (/usr/bin/docker, API 1.41) against shale's socket
# (`shale system service`) and against dockerd 20.10, in one run:
#   (a) `docker run --rm IMAGE true`            target: shale <= 0.5x dockerd (no Node start-up per command)
#   (b) `docker ps -a -s` over N containers      target: <= 1.0x dockerd
#   (c) `docker build` (legacy builder) of a small context, cold and fully cached   target: <= 1.0x dockerd
# Prints medians and ratios shale/dockerd. Run from the repo root as root:  bash bench/api/run.sh
# Knobs: BENCH_RUNS (default 20), BENCH_WARMUP (3), BENCH_LIST_RUNS (10), BENCH_NCONTAINERS (200),
#   BENCH_BUILD_RUNS (5), BENCH_STOP_PEERS=auto|always|never, SHARED_PEERS (../shared/peers).
# Nothing reaches the network: busybox is local on both sides, --pull never, --network none.
set -uo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
SHARED_PEERS="${SHARED_PEERS:-$REPO/../shared/peers}"
RUNS="${BENCH_RUNS:-20}"; WARMUP="${BENCH_WARMUP:-3}"; LIST_RUNS="${BENCH_LIST_RUNS:-10}"
NCONT="${BENCH_NCONTAINERS:-200}"; BUILD_RUNS="${BENCH_BUILD_RUNS:-5}"; STOP_PEERS="${BENCH_STOP_PEERS:-auto}"
PEERS=/tmp/peers
DOCKER="$(command -v /usr/bin/docker || command -v docker)"
T0=$(date +%s)
log() { echo "[bench/api] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
[ -n "$DOCKER" ] || die "no docker CLI (apt-get install docker.io)"

WORK="$(mktemp -d /tmp/shale-bench-api.XXXXXX)"
SROOT="$WORK/root"; APP="$WORK/app"; SOCK="$WORK/shale.sock"; RESULTS="$WORK/results.txt"; : > "$RESULTS"
LABEL="shale-bench-api=$$"; SVC=""; peers_started=0
DS="$DOCKER -H unix://$SOCK"            # the docker CLI at shale
DD="$DOCKER -H unix://$PEERS/docker.sock" # the docker CLI at dockerd

cleanup() {
  set +e
  log "cleaning up"
  if [ -n "$SVC" ]; then
    $DS ps -a -q | xargs -r -n 50 $DS rm -f >/dev/null 2>&1
    kill "$SVC" 2>/dev/null; wait "$SVC" 2>/dev/null
  fi
  node "$APP/bin/shale.js" --root "$SROOT" ps -a -q 2>/dev/null | xargs -r -n 50 node "$APP/bin/shale.js" --root "$SROOT" rm -f >/dev/null 2>&1
  if curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1; then
    $DD ps -a -q --filter "label=$LABEL" | xargs -r -n 50 $DD rm -f >/dev/null 2>&1
    $DD rmi -f "bench-api-$$" >/dev/null 2>&1
  fi
  awk -v w="$WORK" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m"; done
  rm -rf --one-file-system "$WORK"
  if [ "$STOP_PEERS" = always ] || { [ "$STOP_PEERS" = auto ] && [ "$peers_started" = 1 ]; }; then "$SHARED_PEERS/stop-peers.sh" >&2; fi
  log "elapsed: $(( $(date +%s) - T0 )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

measure() { # measure NAME CMD [RUNS]: median ms of CMD into $RESULTS
  local name="$1" cmd="$2" runs="${3:-$RUNS}" i s t ts=()
  bash -c "$cmd" >/dev/null 2>"$WORK/err" || { log "$name failed: $(tail -1 "$WORK/err")"; echo "$name FAILED" >> "$RESULTS"; return 1; }
  if command -v hyperfine >/dev/null 2>&1; then
    hyperfine -i --style basic --warmup "$WARMUP" --runs "$runs" --export-json "$WORK/hf.json" -n "$name" "$cmd" >&2 || { echo "$name FAILED" >> "$RESULTS"; return 1; }
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).results[0]; console.log(process.argv[2], (r.median*1000).toFixed(1))' "$WORK/hf.json" "$name" >> "$RESULTS"
  else
    for ((i = 0; i < WARMUP; i++)); do bash -c "$cmd" >/dev/null 2>&1; done
    for ((i = 0; i < runs; i++)); do s=$(date +%s%N); bash -c "$cmd" >/dev/null 2>&1; t=$(date +%s%N); ts+=($(( (t - s) / 1000 ))); done
    printf '%s\n' "${ts[@]}" | sort -n | awk -v n="$name" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %.1f\n", n, m/1000}' >> "$RESULTS"
  fi
}
get() { awk -v n="$1" '$1 == n {print $2}' "$RESULTS" | tail -1; }
row() { local s d r; s="$(get "$2")"; d="$(get "$3")"; r=""
  [ -n "$s" ] && [ -n "$d" ] && [ "$s" != FAILED ] && [ "$d" != FAILED ] && r="$(awk -v a="$s" -v b="$d" 'BEGIN {printf "%.2f", a/b}')"
  printf '  %-44s shale %9s ms   dockerd %9s ms   %s   (target %s)\n' "$1" "${s:-n/a}" "${d:-n/a}" "${r:+shale/dockerd = $r}" "$4"; }

log "building shale"
npx tsc -p . >&2 || log "WARNING: tsc reported errors"
mkdir -p "$APP"; cp -a bin dist package.json "$APP/" && ln -s "$REPO/node_modules" "$APP/node_modules"
curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1 || peers_started=1
"$SHARED_PEERS/start-peers.sh" >&2 || die "start-peers.sh failed"
command -v hyperfine >/dev/null 2>&1 || apt-get install -y -qq hyperfine >/dev/null 2>&1 || log "no hyperfine: using a loop"
$DD image inspect busybox:local >/dev/null 2>&1 || die "busybox:local missing in dockerd"
node "$APP/bin/shale.js" --root "$SROOT" import -c 'CMD ["/bin/sh"]' "$PEERS/busybox-rootfs.tar" busybox:local >/dev/null || die "shale import failed"
node "$APP/bin/shale.js" --root "$SROOT" system service --time 0 "unix://$SOCK" 2>"$WORK/service.log" &
SVC=$!
for _ in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
[ -S "$SOCK" ] || die "shale system service made no socket: $(tail -1 "$WORK/service.log")"

log "(a) docker run --rm busybox:local true"
measure shale_run  "$DS run --rm --pull never --network none busybox:local true"
measure docker_run "$DD run --rm --pull never --network none busybox:local true"

log "(c) docker build, legacy builder: cold (--no-cache) and fully cached"
CTX="$WORK/ctx"; mkdir -p "$CTX"; head -c 100000 /dev/urandom > "$CTX/data.bin"; echo hello > "$CTX/hello.txt"
printf 'FROM busybox:local\nLABEL bench=api\nCOPY hello.txt /data/hello.txt\nCOPY data.bin /data/data.bin\nRUN echo run > /data/run.txt\nCMD ["cat", "/data/hello.txt"]\n' > "$CTX/Dockerfile"
export DOCKER_BUILDKIT=0
measure shale_build_cold  "$DS build -q --no-cache -t bench-api-$$ $CTX" "$BUILD_RUNS"
measure docker_build_cold "$DD build -q --no-cache -t bench-api-$$ $CTX" "$BUILD_RUNS"
measure shale_build_cached  "$DS build -q -t bench-api-$$ $CTX" "$RUNS"
measure docker_build_cached "$DD build -q -t bench-api-$$ $CTX" "$RUNS"

log "(b) $NCONT containers that each wrote 10 kB, then docker ps -a -s"
for side in DS DD; do
  cli="${!side}"
  seq 1 "$NCONT" | xargs -P 4 -I{} sh -c "$cli run --pull never --network none --label $LABEL busybox:local sh -c 'head -c 10000 /dev/urandom > /f' >/dev/null 2>&1"
done
log "containers: shale $($DS ps -a -q | wc -l), dockerd $($DD ps -a -q --filter label=$LABEL | wc -l)"
measure shale_ps  "$DS ps -a -s" "$LIST_RUNS"
measure docker_ps "$DD ps -a -s" "$LIST_RUNS"

echo
echo "Engine API: the docker CLI against shale's socket vs dockerd (medians, one run)"
row "docker run --rm busybox true" shale_run docker_run "<= 0.5"
row "docker ps -a -s ($NCONT containers)" shale_ps docker_ps "<= 1.0"
row "docker build, cold (--no-cache)" shale_build_cold docker_build_cold "<= 1.0"
row "docker build, fully cached" shale_build_cached docker_build_cached "<= 1.0"
