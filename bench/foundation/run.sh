#!/usr/bin/env bash
# Foundation benchmark: `shale load` and `shale save` of a large image beside the practical limit
# on the same bytes (GNU tar + sha256sum).
#   bash bench/foundation/run.sh                                 # 500 MB over 20k files, 4 layers, 3 runs
#   BENCH_RUNS=5 BENCH_MB=200 BENCH_FILES=8000 bash bench/foundation/run.sh
# The image is a docker-archive made with GNU tar by make-archive.mjs (pseudo-random files, so
# nothing compresses or dedups). Each run uses a fresh data root:
#   load   shale --root R load -i image.tar        limit: tar -xf image.tar + sha256sum of the layer tars
#   save   shale --root R save -o out.tar IMAGE    limit: tar -cf out.tar of the extracted archive + sha256sum of the layer tars
# shale also fsyncs every blob it stores; the "limit+fsync" row adds `sync FILES` on what tar wrote.
# Prints medians, MB/s (of the archive's bytes, 1 MB = 10^6 bytes) and shale/limit throughput ratios
# (1.00 = as fast as the limit; below 1 = slower).
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${BENCH_RUNS:-3}
MB=${BENCH_MB:-500}
FILES=${BENCH_FILES:-20000}
LAYERS=${BENCH_LAYERS:-4}
SHALE_JS=${BENCH_SHALE_JS:-$PWD/bin/shale.js}   # another build of the CLI, if wanted
[ -f "$(dirname "$SHALE_JS")/../dist/cli/main.js" ] || npx tsc -p .

T="$(mktemp -d /tmp/shale-bench-foundation.XXXXXX)"
trap 'rm -rf "$T"' EXIT
shale() { node "$SHALE_JS" "$@"; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else printf "%.3f\n", (a[NR/2]+a[NR/2+1])/2}'; }
elapsed() { echo "$2 - $1" | bc; }

echo "making a docker-archive: ${MB} MB of pseudo-random files in ${FILES} files over ${LAYERS} layers (GNU tar)..."
t0=$(now)
node bench/foundation/make-archive.mjs "$T/image.tar" "$MB" "$FILES" "$LAYERS" > "$T/made.json"
echo "  made in $(printf '%.1f' "$(elapsed "$t0" "$(now)")") s"
BYTES=$(stat -c %s "$T/image.tar")
IMAGE=bench/big:1
CONFIG=$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1])).config)' "$T/made.json")

for f in shale-load limit-load limit-load-sync shale-save limit-save limit-save-sync; do : > "$T/$f"; done
for i in $(seq "$RUNS"); do
  rm -rf "$T/root" "$T/x" "$T/out.tar" "$T/limit.tar"

  t0=$(now); shale --root "$T/root" load -q -i "$T/image.tar"; t1=$(now)
  elapsed "$t0" "$t1" >> "$T/shale-load"
  [ "$(shale --root "$T/root" images --no-trunc --format '{{.ID}}' "$IMAGE")" = "$CONFIG" ] || { echo "shale loaded another image"; exit 1; }

  t0=$(now); shale --root "$T/root" save -o "$T/out.tar" "$IMAGE"; t1=$(now)
  elapsed "$t0" "$t1" >> "$T/shale-save"
  if [ "$i" = 1 ]; then
    # what shale saved carries the same layers: their sha256 are the config's diff_ids
    mkdir "$T/check"; tar -xf "$T/out.tar" -C "$T/check"
    (cd "$T/check" && for l in */layer.tar; do [ "sha256:$(sha256sum "$l" | cut -d' ' -f1)" = "sha256:${l%/layer.tar}" ] || { echo "saved layer $l does not match its diff_id"; exit 1; }; done)
    [ "$(ls "$T"/check/*/layer.tar | wc -l)" = "$LAYERS" ] || { echo "saved archive has the wrong number of layers"; exit 1; }
    rm -rf "$T/check"
  fi

  mkdir "$T/x"
  t0=$(now); tar -xf "$T/image.tar" -C "$T/x"; sha256sum "$T"/x/*/layer.tar >/dev/null; t1=$(now)
  sync "$T"/x/*/layer.tar "$T"/x/*.json; t2=$(now)
  elapsed "$t0" "$t1" >> "$T/limit-load"; elapsed "$t0" "$t2" >> "$T/limit-load-sync"

  t0=$(now); tar -cf "$T/limit.tar" -C "$T/x" .; sha256sum "$T"/x/*/layer.tar >/dev/null; t1=$(now)
  sync "$T/limit.tar"; t2=$(now)
  elapsed "$t0" "$t1" >> "$T/limit-save"; elapsed "$t0" "$t2" >> "$T/limit-save-sync"
  echo "  run $i: load $(tail -1 "$T/shale-load") s (limit $(tail -1 "$T/limit-load") s), save $(tail -1 "$T/shale-save") s (limit $(tail -1 "$T/limit-save") s)"
done

echo
printf 'image: %s files, %s layers, archive %.1f MB; %s runs, medians\n' "$FILES" "$LAYERS" "$(echo "$BYTES / 1000000" | bc -l)" "$RUNS"
printf '%-6s %-12s %9s %9s\n' op who seconds MB/s
mbps() { echo "$BYTES / $1 / 1000000" | bc -l; }
for op in load save; do
  s=$(median < "$T/shale-$op"); l=$(median < "$T/limit-$op"); ls=$(median < "$T/limit-$op-sync")
  printf '%-6s %-12s %9.2f %9.0f\n' "$op" shale "$s" "$(mbps "$s")"
  printf '%-6s %-12s %9.2f %9.0f\n' "$op" limit "$l" "$(mbps "$l")"
  printf '%-6s %-12s %9.2f %9.0f\n' "$op" limit+fsync "$ls" "$(mbps "$ls")"
  printf '%-6s ratio shale/limit %.2f   (shale/limit+fsync %.2f)\n' "$op" "$(echo "$l / $s" | bc -l)" "$(echo "$ls / $s" | bc -l)"
done
echo "(ratios are shale's throughput over the limit's: 1.00 = as fast as tar + sha256sum, below 1 = slower)"
echo "(machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg))"
