#!/usr/bin/env bash
# Container benchmark: shale vs docker (dockerd 20.10), podman and bare runc / crun.
#   (a) `run --rm IMAGE true` latency
#   (b) `ps -a -s` and `system df` with N containers (default 200) that each wrote a 10 kB file
# Prints medians and ratios shale/peer. Run from the repo root as root:  bash bench/containers/run.sh
# Knobs (env): BENCH_RUNS (hyperfine runs for (a), default 30), BENCH_WARMUP (default 3),
#   BENCH_LIST_RUNS (runs for (b), default 10), BENCH_NCONTAINERS (default 200),
#   BENCH_CREATE_JOBS (containers of (b) created this many at a time, default 4),
#   BENCH_NO_BUILD=1 (skip `npx tsc -p .`), BENCH_STOP_PEERS=auto|always|never (auto: stop the
#   peers at the end only if this script started them), SHARED_PEERS (default ../shared/peers).
# Nothing reaches the network: peers use local busybox images only, --pull never, --network none.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
SHARED_PEERS="${SHARED_PEERS:-$REPO/../shared/peers}"
RUNS="${BENCH_RUNS:-30}"
WARMUP="${BENCH_WARMUP:-3}"
LIST_RUNS="${BENCH_LIST_RUNS:-10}"
NCONT="${BENCH_NCONTAINERS:-200}"
JOBS="${BENCH_CREATE_JOBS:-4}"
STOP_PEERS="${BENCH_STOP_PEERS:-auto}"
PEERS=/tmp/peers
export DOCKER_HOST="unix://$PEERS/docker.sock"
export CONTAINERS_CONF="$(cd "$SHARED_PEERS" && pwd)/containers.conf"
PODMAN=(podman --root "$PEERS/podman" --runroot "$PEERS/podman-run")
T0=$(date +%s)

log() { echo "[bench/containers] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (overlay2, runc, dockerd)"

WORK="$(mktemp -d /tmp/shale-bench-containers.XXXXXX)"
SROOT="$WORK/shale-root"
APP="$WORK/app"   # a private copy of bin/ + dist/: other sessions may rebuild dist/ meanwhile
SHALE="node $APP/bin/shale.js --root $SROOT --storage-driver overlay2"
BUNDLE="$WORK/bundle"
LABEL="shale-bench-containers=$$"
RESULTS="$WORK/results.txt"; : > "$RESULTS"
peers_started=0

# ---------------------------------------------------------------------------------------------
cleanup() {
  set +e
  log "cleaning up"
  if [ -d "$SROOT" ]; then
    ids="$($SHALE ps -a -q 2>/dev/null)"
    [ -n "$ids" ] && echo "$ids" | xargs -r -n 50 $SHALE rm -f -v >/dev/null 2>&1
  fi
  if curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1; then
    docker ps -a -q --filter "label=$LABEL" | xargs -r -n 50 docker rm -f >/dev/null 2>&1
  fi
  runc --root "$WORK/runc-state" delete -f bench-runc >/dev/null 2>&1
  crun --root "$WORK/crun-state" delete -f bench-crun >/dev/null 2>&1
  # unmount anything left below the work dir (deepest first), then delete it
  awk -v w="$WORK" '$2 ~ "^"w {print $2}' /proc/self/mounts | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
  rm -rf --one-file-system "$WORK"
  if [ "$STOP_PEERS" = always ] || { [ "$STOP_PEERS" = auto ] && [ "$peers_started" = 1 ]; }; then
    "$SHARED_PEERS/stop-peers.sh" >&2
  else
    log "leaving peers running (they were already up; BENCH_STOP_PEERS=always stops them)"
  fi
  log "elapsed: $(( $(date +%s) - T0 )) s"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# median_ms NAME CMD [RUNS] : time CMD (bash -c), append "NAME MEDIAN_MS" to $RESULTS
measure() {
  local name="$1" cmd="$2" runs="${3:-$RUNS}" out
  if ! out="$(bash -c "$cmd" 2>&1 >/dev/null)"; then
    log "$name: command failed, not measured: $cmd"
    printf '%s\n' "$out" | tail -5 | sed 's/^/    /' >&2
    echo "$name FAILED" >> "$RESULTS"; return 1
  fi
  if command -v hyperfine >/dev/null 2>&1; then
    local j="$WORK/hf-$RANDOM.json"
    # -i: a run that fails is counted and reported, not fatal (the median is over all runs)
    hyperfine -i --style basic --warmup "$WARMUP" --runs "$runs" --export-json "$j" -n "$name" "$cmd" >&2 \
      || { echo "$name FAILED" >> "$RESULTS"; return 1; }
    node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1])).results[0];
             const bad=(r.exit_codes||[]).filter((c)=>c!==0).length;
             console.log(process.argv[2], (r.median*1000).toFixed(1), bad ? `(${bad}/${r.times.length} runs failed)` : "")' "$j" "$name" >> "$RESULTS"
    grep -q "runs failed" <(tail -1 "$RESULTS") && { log "$name: some runs failed; one more try shows:"; bash -c "$cmd" 2>&1 >/dev/null | tail -5 | sed 's/^/    /' >&2; }
  else
    local i t s ts=()
    for ((i = 0; i < WARMUP; i++)); do bash -c "$cmd" >/dev/null 2>&1; done
    for ((i = 0; i < runs; i++)); do
      s=$(date +%s%N); bash -c "$cmd" >/dev/null 2>&1 || log "$name: a run failed"; t=$(date +%s%N)
      ts+=($(( (t - s) / 1000 )))
    done
    printf '%s\n' "${ts[@]}" | sort -n | awk -v n="$name" '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%s %.1f\n", n, m/1000}' >> "$RESULTS"
    log "$name: median $(tail -1 "$RESULTS" | cut -d' ' -f2) ms ($runs runs, loop)"
  fi
}
get() { awk -v n="$1" '$1 == n {print $2}' "$RESULTS" | tail -1; }
note() { awk -v n="$1" '$1 == n {$1 = ""; $2 = ""; sub(/^ +/, ""); print}' "$RESULTS" | tail -1; }
row() { # row LABEL NAME [SHALE_NAME]
  local v s r; v="$(get "$2")"; s="$(get "${3:-}")"
  [ -z "$v" ] && v="n/a"
  r=""
  if [ -n "${3:-}" ] && [ "$v" != n/a ] && [ "$v" != FAILED ] && [ -n "$s" ] && [ "$s" != FAILED ]; then
    r="$(awk -v a="$s" -v b="$v" 'BEGIN {printf "%.2f", a/b}')"
  fi
  printf '  %-52s %10s ms   %-18s %s\n' "$1" "$v" "${r:+shale/peer = $r}" "$(note "$2")"
}

# ---------------------------------------------------------------------------------------------
log "work dir $WORK"
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building shale (npx tsc -p .)"
  npx tsc -p . >&2 || log "WARNING: tsc reported errors; using what was emitted in dist/"
fi
# copy the CLI aside (retry while a concurrent rebuild leaves dist/ half-written)
for try in 1 2 3 4 5 6; do
  rm -rf "$APP"; mkdir -p "$APP"
  cp -a bin dist package.json "$APP/" && ln -s "$REPO/node_modules" "$APP/node_modules"
  $SHALE --version >/dev/null 2>&1 && break
  [ "$try" = 6 ] && die "bin/shale.js does not start (is dist/ built?)"
  log "dist/ looks half-built; retrying in 20 s"; sleep 20
done

if curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1; then
  log "peers already running"
else
  peers_started=1
fi
"$SHARED_PEERS/start-peers.sh" >&2 || die "start-peers.sh failed"
command -v hyperfine >/dev/null 2>&1 || { apt-get install -y -qq hyperfine >/dev/null 2>&1 || log "no hyperfine: using a loop"; }
docker image inspect busybox:local >/dev/null 2>&1 || die "busybox:local missing in dockerd"

# shale base image
$SHALE bootstrap busybox >/dev/null || die "shale bootstrap busybox failed"

# podman base image (offline: imported from the same rootfs tar as docker's busybox:local)
mkdir -p "$PEERS/podman-tmp"
if ! "${PODMAN[@]}" image exists localhost/busybox:local 2>/dev/null; then
  "${PODMAN[@]}" import --change 'CMD ["/bin/sh"]' "$PEERS/busybox-rootfs.tar" localhost/busybox:local >/dev/null \
    || log "podman import failed"
fi

# bare runtime bundle: busybox rootfs + `runc spec` running `true`, no tty
mkdir -p "$BUNDLE/rootfs" "$WORK/runc-state" "$WORK/crun-state"
tar -xf "$PEERS/busybox-rootfs.tar" -C "$BUNDLE/rootfs"
(cd "$BUNDLE" && runc spec)
node -e 'const fs=require("fs"),f=process.argv[1],c=JSON.parse(fs.readFileSync(f));
         c.process.terminal=false; c.process.args=["true"]; fs.writeFileSync(f, JSON.stringify(c,null,2))' "$BUNDLE/config.json"

# ---------------------------------------------------------------------------------------------
log "(a) run --rm IMAGE true: $RUNS runs after $WARMUP warmups each"
measure shale_startup "$SHALE --version"   # the CLI's fixed cost (node + modules), for reading the rest
measure shale_run  "$SHALE run --rm busybox true"
measure docker_run "docker run --rm --pull never --network none busybox:local true"
measure podman_run "CONTAINERS_CONF=$CONTAINERS_CONF ${PODMAN[*]} run --rm --pull never --network none localhost/busybox:local true"
measure runc_run   "runc --root $WORK/runc-state run --bundle $BUNDLE bench-runc"
measure crun_run   "unshare -m sh -c '{ umount /sys/fs/cgroup/unified 2>/dev/null || true; } && exec crun --root $WORK/crun-state run --bundle $BUNDLE bench-crun'"

# ---------------------------------------------------------------------------------------------
log "(b) $NCONT containers that each wrote a 10 kB file"
WRITE='head -c 10000 /dev/urandom > /f'
# create_many NAME CMD_PREFIX IMAGE : run "CMD_PREFIX<i> IMAGE sh -c WRITE" for i in 1..N, JOBS at a time;
# records NAME_create_each = wall time / N
create_many() {
  local name="$1" prefix="$2" s e nfail
  s=$(date +%s%N)
  seq 1 "$NCONT" | xargs -P "$JOBS" -I{} bash -c "$prefix{} \"\$0\" sh -c \"\$1\" >>$WORK/out-{}-$name 2>&1 || { echo \"--- #{}\"; cat $WORK/out-{}-$name; } >> $WORK/fail-$name" "$3" "$WRITE"
  e=$(date +%s%N)
  nfail=$(grep -c '^--- #' "$WORK/fail-$name" 2>/dev/null); nfail=${nfail:-0}
  echo "${name}_create_each $(awk -v d=$(( (e - s) / 1000 )) -v n="$NCONT" 'BEGIN {printf "%.1f", d/n/1000}')${nfail:+ ($nfail/$NCONT failed)}" | sed 's/ (0\/[0-9]* failed)//' >> "$RESULTS"
  if [ "$nfail" -gt 0 ]; then
    log "$name: $nfail of $NCONT runs failed; the first failures:"; head -12 "$WORK/fail-$name" | sed 's/^/    /' >&2
    [ "$nfail" -lt "$NCONT" ]   # still measure the listing if some exist
  fi
}
shale_ok=1; docker_ok=1
create_many shale  "$SHALE run --name bench-" busybox || shale_ok=0
create_many docker "docker run --pull never --network none --label $LABEL --name shale-bench-$$-" busybox:local || docker_ok=0

ns="$($SHALE ps -a -q 2>/dev/null | wc -l)"; nd="$(docker ps -a -q | wc -l)"
log "containers present: shale $ns, dockerd $nd (all of dockerd's are listed, ours are labelled $LABEL)"
echo "shale_count $ns" >> "$RESULTS"; echo "docker_count $nd" >> "$RESULTS"
if [ "$shale_ok" = 1 ]; then
  measure shale_ps "$SHALE ps -a -s" "$LIST_RUNS"
  measure shale_df "$SHALE system df" "$LIST_RUNS"
fi
if [ "$docker_ok" = 1 ]; then
  measure docker_ps "docker ps -a -s" "$LIST_RUNS"
  measure docker_df "docker system df" "$LIST_RUNS"
fi
{
  echo "--- shale system df ---";  $SHALE system df 2>&1
  echo "--- docker system df ---"; docker system df 2>&1
  echo "--- shale ps -a -s | head -3 ---";  $SHALE ps -a -s 2>&1 | head -3
  echo "--- docker ps -a -s | head -3 ---"; docker ps -a -s 2>&1 | head -3
} >&2

# ---------------------------------------------------------------------------------------------
echo
echo "== shale container benchmark ($(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r)) =="
echo "(a) run --rm busybox true  (median of $RUNS, $WARMUP warmups; shale on overlay2 via $(command -v runc))"
row "shale run --rm busybox true"                         shale_run
row "docker run --rm --pull never --network none"          docker_run  shale_run
row "podman run --rm --network none (runc)"                podman_run  shale_run
row "bare runc run (prepared bundle)"                      runc_run    shale_run
row "bare crun run (unshare -m wrapper)"                   crun_run    shale_run
row "(reference: shale --version, the CLI's startup)"      shale_startup
echo "(b) $NCONT exited containers, each wrote 10 kB  (median of $LIST_RUNS; present: shale $(get shale_count), dockerd $(get docker_count))"
row "shale ps -a -s"                                        shale_ps
row "docker ps -a -s"                                       docker_ps   shale_ps
row "shale system df"                                       shale_df
row "docker system df"                                      docker_df   shale_df
row "shale run: creating the $NCONT ($JOBS at a time), wall/N"   shale_create_each
row "docker run: creating the $NCONT ($JOBS at a time), wall/N"  docker_create_each shale_create_each
