#!/usr/bin/env bash
# Registry benchmark: shale push/pull against skopeo copy of the same large multi-layer image,
# on a docker-registry (distribution 2.8) on 127.0.0.1. Nothing leaves loopback.
#   bash bench/registry/run.sh                 # 5 layers x 40 MiB, 3 runs
#   BENCH_RUNS=5 BENCH_LAYERS=5 BENCH_MB=40 bash bench/registry/run.sh
# Every timed operation starts from a fresh registry (push) or a fresh destination (pull), so
# nothing is skipped or mounted. Prints medians and shale/skopeo ratios (above 1: shale slower).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${BENCH_RUNS:-3}
LAYERS=${BENCH_LAYERS:-5}
MB=${BENCH_MB:-40}
command -v docker-registry >/dev/null || { echo "docker-registry is not installed (apt-get install docker-registry)"; exit 1; }
command -v skopeo >/dev/null || { echo "skopeo is not installed (apt-get install skopeo)"; exit 1; }
[ -f dist/registry/pull.js ] || npx tsc -p .

T="$(mktemp -d /tmp/shale-bench-registry.XXXXXX)"
REGPID=
stop_registry() { if [ -n "$REGPID" ]; then kill "$REGPID" 2>/dev/null || true; wait "$REGPID" 2>/dev/null || true; REGPID=; fi; }
trap 'stop_registry; rm -rf "$T"' EXIT
shale() { node bin/shale.js "$@"; }
now() { date +%s.%N; }
free_port() { node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

# a fresh registry (new storage, new port): sets PORT
start_registry() {
  stop_registry
  PORT=$(free_port)
  local d="$T/reg-$PORT"; mkdir -p "$d"
  printf 'version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$d/data" "$PORT" > "$d/config.yml"
  docker-registry serve "$d/config.yml" >"$d/log" 2>&1 & REGPID=$!
  for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "docker-registry did not start: $(cat "$d/log")"; exit 1
}

median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }

SRC="$T/src"
echo "making a ${LAYERS}-layer image of ${LAYERS} x ${MB} MiB (uncompressed)..."
node bench/registry/make-image.mjs "$SRC" bench/big:1 "$LAYERS" "$MB"
shale --root "$SRC" save --format oci-dir -o "$T/oci" bench/big:1
DIGEST=$(shale --root "$SRC" images --no-trunc --format '{{.ID}}' bench/big)

: > "$T/shale-push"; : > "$T/skopeo-push"; : > "$T/shale-pull"; : > "$T/skopeo-pull"
for i in $(seq "$RUNS"); do
  # push: shale from its store; skopeo from the OCI layout shale saved (same blobs)
  start_registry
  shale --root "$SRC" tag bench/big:1 "127.0.0.1:$PORT/shale/big:1"
  t0=$(now); shale --root "$SRC" push "127.0.0.1:$PORT/shale/big:1" >"$T/push.log"; t1=$(now)
  grep -q 'Pushed' "$T/push.log" || { echo "shale push uploaded nothing:"; cat "$T/push.log"; exit 1; }
  echo "$t1 - $t0" | bc >> "$T/shale-push"
  shale --root "$SRC" rmi "127.0.0.1:$PORT/shale/big:1" >/dev/null
  start_registry
  t0=$(now); skopeo copy -q --dest-tls-verify=false "oci:$T/oci" "docker://127.0.0.1:$PORT/skopeo/big:1"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$T/skopeo-push"

  # pull from that registry: shale into an empty root, skopeo into an empty OCI layout
  rm -rf "$T/pull-root" "$T/pull-oci"
  t0=$(now); shale --root "$T/pull-root" pull "127.0.0.1:$PORT/skopeo/big:1" >"$T/pull.log"; t1=$(now)
  [ "$(shale --root "$T/pull-root" images --no-trunc --format '{{.ID}}')" = "$DIGEST" ] || { echo "shale pulled another image"; cat "$T/pull.log"; exit 1; }
  echo "$t1 - $t0" | bc >> "$T/shale-pull"
  t0=$(now); skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/skopeo/big:1" "oci:$T/pull-oci:big"; t1=$(now)
  echo "$t1 - $t0" | bc >> "$T/skopeo-pull"
  echo "run $i: shale push $(tail -1 "$T/shale-push")s, skopeo push $(tail -1 "$T/skopeo-push")s, shale pull $(tail -1 "$T/shale-pull")s, skopeo pull $(tail -1 "$T/skopeo-pull")s"
done
stop_registry

# the CLI's fixed start-up cost (node + modules), included in every shale figure above
: > "$T/startup"
for _ in $(seq 5); do t0=$(now); shale --version >/dev/null; t1=$(now); echo "$t1 - $t0" | bc >> "$T/startup"; done

SIZE=$(du -sm "$T/oci/blobs" | cut -f1)
sp=$(median < "$T/shale-push"); kp=$(median < "$T/skopeo-push"); sl=$(median < "$T/shale-pull"); kl=$(median < "$T/skopeo-pull")
echo
echo "image: $LAYERS layers, ${SIZE} MiB of blobs; $RUNS runs; medians in seconds (ratio shale/skopeo, above 1 = shale slower)"
printf '%-6s %10s %10s %8s\n' op shale skopeo ratio
printf '%-6s %10.2f %10.2f %8.2f\n' push "$sp" "$kp" "$(echo "$sp / $kp" | bc -l)"
printf '%-6s %10.2f %10.2f %8.2f\n' pull "$sl" "$kl" "$(echo "$sl / $kl" | bc -l)"
printf '%-6s %10.2f   (shale --version: start-up cost in each shale figure)\n' start "$(median < "$T/startup")"
