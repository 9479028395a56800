#!/usr/bin/env bash
# bench.sh runs hwauthd's comparison benchmarks (e2e/bench_test.go): hwauthd
# as its own process against the direct paths on the same kind of emulated
# hardware, in interleaved rounds, one table row per comparison with the p50
# and p90 ratios (median over the rounds, [lowest-highest round]); then the
# allocation benchmarks of the hot paths. docs/performance.md shows a run.
#
# BENCH_ROUNDS (default 7) and BENCH_OPS (default 100, the percentage of each
# path's block of operations per round) scale the run; BENCH_IDLE is the idle
# period in seconds (default 30); BENCH_CACHE keeps the preloaded registries
# (default /var/tmp/hwauthd-bench; the first run builds them); BENCH picks the
# comparisons (a go test -bench pattern, default all).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "hwauthd $(git describe --always --dirty 2>/dev/null || echo '?'), $(nproc) cores, $(date -u '+%F %H:%M UTC')," \
  "${BENCH_ROUNDS:-7} rounds"
printf '%-52s %10s %10s  %s\n' "comparison" "through" "against" "ratios: median [lowest-highest round]"
go test -run '^$' -bench "${BENCH:-.}" -benchtime 1x -timeout 30m ./e2e/ |
  grep -Ev '^(goos|goarch|pkg|cpu|PASS|ok|Benchmark[A-Za-z/0-9]+-[0-9]+ )'
echo
echo "Allocations per operation:"
go test -run '^$' -bench 'Transmit|Transaction' -benchmem -benchtime 2000x ./pcsc | grep -E '^Benchmark'
