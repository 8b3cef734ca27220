#!/usr/bin/env bash
# Profile-guided optimization: writes cmd/vigil/default.pgo, the CPU
# profile that `go build` and `go run` apply to the vigil binary (-pgo=auto,
# Go 1.21 and later). The profile is one whole `vigil match --no-actions`
# run, index build and matching, over the data of bench/detect.sh, with
# GOMAXPROCS=1 as that benchmark runs it; the run works on a copy of the
# store, which stays as it was.
#
#   KEEP=/tmp/vb N=10000000 bench/detect.sh    # the data, once
#   bench/pgo.sh /tmp/vb                       # then rebuild, commit default.pgo
#
# Refresh the profile when the matching or index code has changed much:
# the compiler inlines the call sites the profile finds hot, and a profile
# of older code still applies to what has not moved. bench/abmatch.sh
# compares the builds with and without it (go build -pgo=off).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ $# -ne 1 ]; then
  echo "usage: bench/pgo.sh KEEP_DIR   (the directory of KEEP=... bench/detect.sh)" >&2
  exit 2
fi
dir=$1
for f in "$dir/data/vigil.db" "$dir/events.ndjson"; do
  [ -f "$f" ] || { echo "pgo: $f is missing (run KEEP=$dir bench/detect.sh first)" >&2; exit 1; }
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/vigil" ./cmd/vigil
cp -r "$dir/data" "$work/data"
printf 'data_dir: %s\nlog:\n  level: warn\n' "$work/data" > "$work/vigil.yaml"
cat "$dir/events.ndjson" > /dev/null # a warm page cache, as bench/detect.sh
GOMAXPROCS=1 VIGIL_CPUPROFILE="$work/cpu.pprof" "$work/vigil" --config "$work/vigil.yaml" \
  match --no-actions "$dir/events.ndjson" > /dev/null 2> "$work/match.err" || { cat "$work/match.err"; exit 1; }
cat "$work/match.err"
cp "$work/cpu.pprof" cmd/vigil/default.pgo
echo "wrote cmd/vigil/default.pgo ($(stat -c %s cmd/vigil/default.pgo) bytes)"
