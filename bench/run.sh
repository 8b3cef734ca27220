#!/usr/bin/env bash
# Runs the benchmarks of the two performance goals the documented way (see
# bench/README.md) and prints their figures and the machine they ran on.
#
#   bench/run.sh            # both goals
#   COUNT=5 bench/run.sh    # more runs of the ingest benchmark (default 3)
set -euo pipefail
cd "$(dirname "$0")/.."

pkg=./internal/threatcommand/
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

echo "== machine"
echo "nproc:      $(nproc)"
echo "cpu:        $(grep -m1 'model name' /proc/cpuinfo | sed 's/^[^:]*: *//')"
echo "memory:     $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
echo "go:         $(go version)"
echo "load (1/5/15 min, before): $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "== goal 1: normalize and store >= 100,000 IOC records/s on one core"
echo "go test -run '^\$' -bench 'IngestIOC' -cpu 1 -count ${COUNT:-3} $pkg"
go test -run '^$' -bench 'IngestIOC' -cpu 1 -count "${COUNT:-3}" "$pkg" | tee "$out/ingest.txt" | grep -E '^(Benchmark|FAIL|panic)' || true

echo
echo "== goal 2: pull 1,000,000 IOCs with peak RSS < 300 MB (in its own process: VmHWM is per process)"
echo "go test -run '^\$' -bench 'Pull1M' -benchtime 1x -timeout 30m $pkg"
go test -run '^$' -bench 'Pull1M' -benchtime 1x -timeout 30m "$pkg" | tee "$out/pull.txt" | grep -E '^(Benchmark|FAIL|panic)' || true

# metric NAME FILE: the values of the metric named NAME on the benchmark
# lines of FILE, one line per benchmark.
metric() {
  awk -v m="$2" '/^Benchmark/ { for (i = 3; i < NF; i++) if ($(i + 1) == m) v[$1] = v[$1] " " $i }
    END { for (b in v) printf "  %-32s %s\n", b, v[b] }' "$1" | sort
}

echo
echo "== figures"
echo "goal 1, records/s (target 100000):"
metric "$out/ingest.txt" records/s
echo "goal 1, records per CPU second (steadier when the machine is shared):"
metric "$out/ingest.txt" records/cpu-s
echo "goal 2, peak RSS in MB (target < 300; includes the fake server):"
metric "$out/pull.txt" peak-RSS-MB
echo "goal 2, records/s:"
metric "$out/pull.txt" records/s
echo "load (1/5/15 min, after): $(cut -d' ' -f1-3 /proc/loadavg)"
if grep -qE '^(FAIL|panic)' "$out/ingest.txt" "$out/pull.txt"; then
  echo "a benchmark failed:"; cat "$out/ingest.txt" "$out/pull.txt"; exit 1
fi
