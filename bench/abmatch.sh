#!/usr/bin/env bash
# A/B comparison of `vigil match` between builds, for changes smaller than
# the run-to-run noise of a shared machine: the builds take turns over
# ROUNDS rounds (the first build first in odd rounds, last in even ones),
# each run on a fresh copy of one store (a run stores alerts and sightings,
# which would change the next), with GOMAXPROCS=1. It prints each run's CPU
# seconds of matching and index build time, then each build's median.
#
#   KEEP=/tmp/vb N=10000000 bench/detect.sh           # generate the data once
#   go build -o /tmp/vigil-a ./cmd/vigil              # one build per change
#   bench/abmatch.sh /tmp/vb /tmp/vigil-a /tmp/vigil-b
#   ROUNDS=6 RETROHUNT=false bench/abmatch.sh /tmp/vb /tmp/vigil-a /tmp/vigil-b
set -euo pipefail

if [ $# -lt 2 ]; then
  echo "usage: [ROUNDS=3] [RETROHUNT=true|false] bench/abmatch.sh KEEP_DIR BUILD..." >&2
  exit 2
fi
dir=$1
shift
for f in "$dir/data/vigil.db" "$dir/events.ndjson"; do
  [ -f "$f" ] || { echo "abmatch: $f is missing (run KEEP=$dir bench/detect.sh first)" >&2; exit 1; }
done
for b in "$@"; do
  [ -x "$b" ] || { echo "abmatch: $b is not an executable" >&2; exit 1; }
done
case ${RETROHUNT:-true} in true | false) ;; *) echo "abmatch: RETROHUNT is true or false" >&2; exit 2 ;; esac

run=$dir/ab-data
printf 'data_dir: %s\nlog:\n  level: warn\ndetection:\n  retrohunt:\n    enabled: %s\n' "$run" "${RETROHUNT:-true}" > "$dir/ab.yaml"
results=$(mktemp)
trap 'rm -rf "$run" "$results" "$dir/ab.yaml" "$dir/ab.err"' EXIT

builds=("$@")
for r in $(seq "${ROUNDS:-3}"); do
  order=("${builds[@]}")
  if [ $((r % 2)) -eq 0 ]; then
    order=()
    for ((i = ${#builds[@]} - 1; i >= 0; i--)); do order+=("${builds[i]}"); done
  fi
  for b in "${order[@]}"; do
    rm -rf "$run"
    cp -r "$dir/data" "$run"
    sync
    # Read the events once first: on this project's VM, a file left
    # untouched for a few minutes costs about 0.9 CPU s (in the kernel) to
    # read again the first time, page cache or not, and would count against
    # whichever build runs first after a pause (see bench/README.md).
    cat "$dir/events.ndjson" > /dev/null
    GOMAXPROCS=1 "$b" --config "$dir/ab.yaml" match --no-actions "$dir/events.ndjson" > /dev/null 2> "$dir/ab.err" || { cat "$dir/ab.err"; exit 1; }
    cpu=$(sed -n 's/.*cpu_seconds=\([0-9.]*\).*/\1/p' "$dir/ab.err")
    idx=$(sed -n 's/^index: .* in \([0-9.]*\)s.*/\1/p' "$dir/ab.err")
    alerts=$(sed -n 's/.* alerts=\([0-9]*\).*/\1/p' "$dir/ab.err")
    echo "round $r  $b  cpu_seconds=$cpu  alerts=$alerts  index=${idx}s  load=$(cut -d' ' -f1 /proc/loadavg)"
    echo "$b $cpu" >> "$results"
  done
done

echo
events=$(wc -l < "$dir/events.ndjson")
for b in "${builds[@]}"; do
  awk -v b="$b" -v n="$events" '$1 == b { v[++k] = $2 }
    END {
      for (i = 1; i <= k; i++) for (j = i + 1; j <= k; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
      m = k % 2 ? v[(k + 1) / 2] : (v[k / 2] + v[k / 2 + 1]) / 2
      printf "%s: %d runs, %.2f-%.2f CPU s, median %.2f (%.0f events per CPU second)\n", b, k, v[1], v[k], m, n / m
    }' "$results"
done
