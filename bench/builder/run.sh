#!/usr/bin/env bash
# Builder benchmark: `shale build` vs docker's legacy builder (DOCKER_BUILDKIT=0, 28 CLI), BuildKit
# (DOCKER_BUILDKIT=1 /usr/bin/docker, dockerd 20.10) and `buildah bud`, on the same Dockerfiles:
#   (i)   cold build of a small Dockerfile (FROM busybox:local, LABEL, COPY, RUN, RUN, CMD)
#   (ii)  fully cached rebuild of it
#   (iii) COPY-heavy build: `COPY . /ctx` of a generated context (~300 MB in ~30k files), cold and
#         cached, beside the practical limit `tar -c CONTEXT | sha256sum`
# Prints medians and ratios shale/peer. Run from the repo root as root:  bash bench/builder/run.sh
# Knobs (env): BENCH_RUNS (default 3), BENCH_WARMUP (small builds, default 1), BENCH_FILES (default
#   30000), BENCH_MB (default 300), BENCH_STORAGE_DRIVER (shale's, default overlay2),
#   BENCH_ONLY="shale legacy buildkit buildah" (subset), BENCH_NO_BUILD=1 (skip `npx tsc -p .`),
#   BENCH_STOP_PEERS=auto|always|never (auto: stop peers at the end only if this script started them).
# Nothing reaches the network: base images are local (shale: `bootstrap busybox`, tagged busybox:local;
# docker/buildah: busybox:local imported from ../shared/peers' rootfs tar), no --pull, --network none.
set -uo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$REPO"
SHARED_PEERS="${SHARED_PEERS:-$REPO/../shared/peers}"
RUNS="${BENCH_RUNS:-3}"
WARMUP="${BENCH_WARMUP:-1}"
NFILES="${BENCH_FILES:-30000}"
MB="${BENCH_MB:-300}"
ONLY="${BENCH_ONLY:-shale legacy buildkit buildah}"
STOP_PEERS="${BENCH_STOP_PEERS:-auto}"
PEERS=/tmp/peers
export DOCKER_HOST="unix://$PEERS/docker.sock"
export CONTAINERS_CONF="$(cd "$SHARED_PEERS" && pwd)/containers.conf"
T0=$(date +%s)

log() { echo "[bench/builder] $*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root (overlay2, runc, dockerd)"

WORK="$(mktemp -d /tmp/shale-bench-builder.XXXXXX)"
SROOT="$WORK/shale-root"
APP="$WORK/app"   # a private copy of bin/ + dist/: other sessions may rebuild dist/ meanwhile
SHALE="node $APP/bin/shale.js --root $SROOT --storage-driver ${BENCH_STORAGE_DRIVER:-overlay2}"
BUILDAH="buildah --root $WORK/buildah --runroot $WORK/buildah-run"   # private store, same containers.conf
TAG="shale-bench-builder-$$"
RESULTS="$WORK/results.txt"; : > "$RESULTS"
peers_started=0

cleanup() {
  set +e
  log "cleaning up"
  if curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1; then
    docker image ls -q --filter "reference=$TAG*" | sort -u | xargs -r docker rmi -f >/dev/null 2>&1
    docker builder prune -af >/dev/null 2>&1   # BuildKit cache (holds only what builds left)
  fi
  [ -d "$WORK/buildah" ] && $BUILDAH rm --all >/dev/null 2>&1
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

# ---------------------------------------------------------------------------------------------
# builders: build_<b> CONTEXT TAG [--no-cache]   clean_<b> TAG (remove the image and build cache)
build_shale()    { $SHALE build -q -t "$2" ${3:-} "$1"; }
clean_shale()    { $SHALE rmi -f "$1"; $SHALE builder prune -a -f; }
build_legacy()   { DOCKER_BUILDKIT=0 docker build -q --network none -t "$2" ${3:-} "$1"; }
clean_legacy()   { docker rmi -f "$1"; }   # also deletes the untagged parents = the legacy cache
build_buildkit() { DOCKER_BUILDKIT=1 /usr/bin/docker build -q --network none -t "$2" ${3:-} "$1"; }
clean_buildkit() { docker rmi -f "$1"; docker builder prune -af; }
build_buildah()  { $BUILDAH bud -q --pull=never --network none --layers -t "$2" ${3:-} "$1"; }
clean_buildah()  { $BUILDAH rmi -f "$1"; $BUILDAH rmi --prune; }

# timed NAME RUNS WARMUP PREP CMD : run PREP (untimed) then CMD, RUNS times after WARMUP untimed rounds;
# appends "NAME MEDIAN_MS (all runs)" to $RESULTS
timed() {
  local name="$1" runs="$2" warm="$3" prep="$4" cmd="$5" i s e ts=()
  for ((i = 0; i < warm + runs; i++)); do
    eval "$prep" >/dev/null 2>&1
    s=$(date +%s%N)
    if ! eval "$cmd" >/dev/null 2>"$WORK/err"; then
      log "$name: failed: $cmd"; tail -5 "$WORK/err" | sed 's/^/    /' >&2
      echo "$name FAILED" >> "$RESULTS"; return 1
    fi
    e=$(date +%s%N)
    ((i >= warm)) && ts+=($(( (e - s) / 1000 )))
  done
  local med all
  med="$(printf '%s\n' "${ts[@]}" | sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.1f", m/1000}')"
  all="$(printf '%s\n' "${ts[@]}" | awk '{printf "%s%.0f", (NR>1?" ":""), $1/1000}')"
  echo "$name $med ($all)" >> "$RESULTS"
  log "$name: median $med ms  (runs: $all ms)"
}
get() { awk -v n="$1" '$1 == n {print $2}' "$RESULTS" | tail -1; }
runs_of() { awk -v n="$1" '$1 == n {$1 = ""; $2 = ""; sub(/^ +/, ""); print}' "$RESULTS" | tail -1; }
row() { # row LABEL NAME [SHALE_NAME]: ratio shale/peer = SHALE/NAME;  row LABEL SHALE_NAME LIMIT_NAME shale/limit
  local v s r; v="$(get "$2")"; s="$(get "${3:-}")"
  [ -z "$v" ] && v="n/a"
  r=""
  if [ -n "${3:-}" ] && [ "$v" != n/a ] && [ "$v" != FAILED ] && [ -n "$s" ] && [ "$s" != FAILED ]; then
    if [ "${4:-}" = shale/limit ]; then r="$(awk -v a="$v" -v b="$s" 'BEGIN {printf "%.2f", a/b}')"
    else r="$(awk -v a="$s" -v b="$v" 'BEGIN {printf "%.2f", a/b}')"; fi
  fi
  printf '  %-44s %10s ms  %-18s %s\n' "$1" "$v" "$(runs_of "$2")" "${r:+${4:-shale/peer} = $r}"
}
on() { [[ " $ONLY " == *" $1 "* ]]; }

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
curl -fsS --unix-socket "$PEERS/docker.sock" http://localhost/_ping >/dev/null 2>&1 && log "peers already running" || peers_started=1
"$SHARED_PEERS/start-peers.sh" >&2 || die "start-peers.sh failed"
docker image inspect busybox:local >/dev/null 2>&1 || die "busybox:local missing in dockerd"

# base images, all named busybox:local so that every builder reads the very same Dockerfile
if on shale; then
  $SHALE bootstrap busybox -t busybox:local >/dev/null || die "shale bootstrap busybox failed"
fi
if on buildah; then
  mkdir -p "$PEERS/podman-tmp"
  if ! $BUILDAH inspect --type image localhost/busybox:local >/dev/null 2>&1; then
    ctr="$($BUILDAH from --pull=never scratch)" &&
      mnt="$($BUILDAH mount "$ctr")" && tar -xf "$PEERS/busybox-rootfs.tar" -C "$mnt" &&
      $BUILDAH umount "$ctr" >/dev/null &&
      $BUILDAH config --cmd '["/bin/sh"]' "$ctr" &&
      $BUILDAH commit -q "$ctr" localhost/busybox:local >/dev/null &&
      $BUILDAH rm "$ctr" >/dev/null || die "could not make busybox:local in the buildah store"
  fi
fi

# (i)/(ii) small context
SMALL="$WORK/small"; mkdir -p "$SMALL"
echo "hello from the build context" > "$SMALL/hello.txt"
cat > "$SMALL/Dockerfile" <<'EOF'
FROM busybox:local
LABEL org.example.purpose="shale builder benchmark"
COPY hello.txt /data/hello.txt
RUN echo "written by RUN" > /data/run.txt && mkdir -p /data/sub && echo x > /data/sub/x
RUN rm /bin/vi && rm -rf /data/sub && echo done > /data/done.txt
CMD ["cat", "/data/hello.txt"]
EOF

# (iii) COPY-heavy context: NFILES files in dirs of 1000, sizes 1..19 kB (mean ~10 kB -> ~MB total),
# content from AES-128-CTR over zeros with a fixed key: deterministic and incompressible
BIG="$WORK/big"; mkdir -p "$BIG"
log "generating the COPY-heavy context ($NFILES files, ~$MB MB)"
node - "$BIG" "$NFILES" "$MB" <<'EOF'
const fs = require('fs'), path = require('path'), crypto = require('crypto');
const [dir, n, mb] = [process.argv[2], +process.argv[3], +process.argv[4]];
const mean = Math.floor(mb * 1e6 / n), span = Math.floor(mean * 0.9);
const c = crypto.createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
let total = 0;
for (let i = 0; i < n; i++) {
  const d = path.join(dir, 'd' + String(Math.floor(i / 1000)).padStart(3, '0'));
  if (i % 1000 === 0) fs.mkdirSync(d, { recursive: true });
  const size = mean - span + ((i * 7919) % (2 * span + 1));
  fs.writeFileSync(path.join(d, 'f' + String(i % 1000).padStart(4, '0') + '.bin'), c.update(Buffer.alloc(size)));
  total += size;
}
console.error(`[bench/builder] context: ${n} files, ${(total / 1e6).toFixed(1)} MB`);
EOF
printf 'FROM busybox:local\nCOPY . /ctx\n' > "$BIG/Dockerfile"
CTX_MB="$(du -s -B1 --apparent-size "$BIG" | awk '{printf "%.0f", $1/1e6}')"; CTX_FILES="$(find "$BIG" -type f | wc -l)"

# ---------------------------------------------------------------------------------------------
for b in shale legacy buildkit buildah; do
  on "$b" || continue
  log "== $b: small Dockerfile, cold (--no-cache after removing image and cache)"
  timed "${b}_cold" "$RUNS" "$WARMUP" "clean_$b $TAG-small" "build_$b $SMALL $TAG-small --no-cache"
  log "== $b: small Dockerfile, fully cached rebuild"
  timed "${b}_cached" "$RUNS" "$WARMUP" ":" "build_$b $SMALL $TAG-small"
  clean_$b "$TAG-small" >/dev/null 2>&1
done

log "== practical limit: tar -c of the context | sha256sum"
timed limit_tar "$RUNS" 1 ":" "tar -c -C $BIG . | sha256sum"
for b in shale legacy buildkit buildah; do
  on "$b" || continue
  log "== $b: COPY . /ctx of $CTX_FILES files, $CTX_MB MB, cold"
  timed "${b}_copy" "$RUNS" 0 "clean_$b $TAG-big" "build_$b $BIG $TAG-big --no-cache"
  log "== $b: COPY-heavy, cached rebuild"
  timed "${b}_copy_cached" "$RUNS" 0 ":" "build_$b $BIG $TAG-big"
  clean_$b "$TAG-big" >/dev/null 2>&1
done

# ---------------------------------------------------------------------------------------------
echo
echo "== shale builder benchmark ($(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r)) =="
echo "median of $RUNS runs (each run's ms in parentheses); ratio > 1 means shale is slower"
echo "(i) cold build, small Dockerfile: FROM, LABEL, COPY, RUN, RUN, CMD"
row "shale build --no-cache"                   shale_cold
row "docker legacy builder (DOCKER_BUILDKIT=0)" legacy_cold   shale_cold
row "BuildKit (dockerd 20.10)"                  buildkit_cold shale_cold
row "buildah bud --layers"                      buildah_cold  shale_cold
echo "(ii) fully cached rebuild, same Dockerfile"
row "shale build"                               shale_cached
row "docker legacy builder"                     legacy_cached   shale_cached
row "BuildKit"                                  buildkit_cached shale_cached
row "buildah bud --layers"                      buildah_cached  shale_cached
echo "(iii) COPY . /ctx: $CTX_FILES files, $CTX_MB MB; cold (--no-cache, image removed)"
row "tar -c CONTEXT | sha256sum (practical limit)" limit_tar
row "shale build"                               shale_copy    limit_tar "shale/limit"
row "docker legacy builder"                     legacy_copy   shale_copy
row "BuildKit"                                  buildkit_copy shale_copy
row "buildah bud --layers"                      buildah_copy  shale_copy
echo "(iii') COPY-heavy, cached rebuild (context checksummed, layer reused)"
row "shale build"                               shale_copy_cached    limit_tar "shale/limit"
row "docker legacy builder"                     legacy_copy_cached   shale_copy_cached
row "BuildKit"                                  buildkit_copy_cached shale_copy_cached
row "buildah bud --layers"                      buildah_copy_cached  shale_copy_cached
