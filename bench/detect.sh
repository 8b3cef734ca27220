#!/usr/bin/env bash
# Detection benchmark (README "Benchmarks"): generates N indicators into a
# store and M events of about 600 bytes (1 % carrying an indicator's value),
# then times, on the same files:
#   - the index build from the store (`vigil match` prints it: "index: …");
#   - `vigil match --no-actions` over the events, as events per CPU second
#     (GOMAXPROCS=1: one core);
#   - `rg -F -f values.txt events.ndjson`, when ripgrep is installed, under a
#     memory cap (RG_MEM_KB, default 8 GiB) and a time limit (RG_TIMEOUT).
#
#   bench/detect.sh                          # 1M indicators, 1M events
#   N=10000000 M=2000000 bench/detect.sh     # the 10M figure
#   KEEP=/tmp/vigil-bench bench/detect.sh    # keep (and reuse) the data
#   RETROHUNT=false bench/detect.sh          # without recording sightings
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-1000000}
M=${M:-1000000}
dir=${KEEP:-$(mktemp -d)}
[ -n "${KEEP:-}" ] || trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir"

echo "== machine"
echo "nproc:  $(nproc)"
echo "cpu:    $(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//')"
echo "memory: $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "go:     $(go version)"
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg)"

go build -o "$dir/vigil" ./cmd/vigil
if [ ! -f "$dir/done-$N-$M" ]; then
  echo; echo "== generating $N indicators and $M events in $dir"
  rm -rf "$dir/data"
  /usr/bin/time -f "generated in %e s, peak RSS %M KiB" go run ./bench/detectgen -indicators "$N" -events "$M" -dir "$dir"
  touch "$dir/done-$N-$M"
fi
# RETROHUNT=false: match without recording sightings (detection.retrohunt).
printf 'data_dir: %s\nlog:\n  level: warn\ndetection:\n  retrohunt:\n    enabled: %s\n' "$dir/data" "${RETROHUNT:-true}" > "$dir/vigil.yaml"
ls -l "$dir/events.ndjson" "$dir/values.txt" | awk '{print $5, $9}'
echo "events: $(wc -l < "$dir/events.ndjson"), average $(($(stat -c %s "$dir/events.ndjson") / M)) bytes"

echo; echo "== vigil match --no-actions (GOMAXPROCS=1)"
# A warm page cache for the events, as for rg below: see bench/README.md
# (a file untouched for minutes is slow to read again on some VMs).
cat "$dir/events.ndjson" > /dev/null
GOMAXPROCS=1 /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
  "$dir/vigil" --config "$dir/vigil.yaml" match --no-actions "$dir/events.ndjson" > "$dir/alerts.ndjson" 2> "$dir/match.err" || { cat "$dir/match.err"; exit 1; }
cat "$dir/match.err"
awk -v n="$N" '
  /^index:/ { for (i = 1; i <= NF; i++) if ($i == "in") { s = $(i + 1); sub("s", "", s) }
              printf "index build: %.2f s per million indicators\n", s / (n / 1e6) }
  /^events=/ { for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
               printf "matching: %.0f events per CPU second, %.0f events per second\n", v["events"] / v["cpu_seconds"], v["events"] / v["seconds"] }
' "$dir/match.err"

echo; echo "== rg -F -f values.txt ($(wc -l < "$dir/values.txt") patterns, CIDR ranges left out)"
if command -v rg >/dev/null; then
  ( ulimit -v "${RG_MEM_KB:-8388608}"
    /usr/bin/time -f "wall %e s, user %U s, sys %S s, peak RSS %M KiB" \
      timeout "${RG_TIMEOUT:-900}" rg -c -F -f "$dir/values.txt" "$dir/events.ndjson" ) 2>&1 | tail -3 \
    || echo "rg did not finish (memory cap ${RG_MEM_KB:-8388608} KiB or ${RG_TIMEOUT:-900} s)"
else
  echo "ripgrep is not installed (apt-get install ripgrep): skipped"
fi
echo "load:   $(cut -d' ' -f1-3 /proc/loadavg)"
