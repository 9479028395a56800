#!/usr/bin/env bash
# fuzz-smoke.sh runs every go test -fuzz target in the module briefly, so each
# parser of outside bytes is exercised beyond its seed corpus on every `make
# test`. FUZZTIME (default 10000x) sets each target's budget. The default is a
# count, not a duration: with a duration, Go 1.26's fuzz coordinator can end a
# clean run with a spurious "context deadline exceeded" at the deadline
# (golang/go#75804, fixed in Go 1.27); a count has no deadline to race.
set -euo pipefail
fuzztime=${FUZZTIME:-10000x}
count=0
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  grep -lsq '^func Fuzz' "$dir"/*_test.go || continue
  for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
    echo "fuzz: $pkg $target ($fuzztime)"
    go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1 || {
      cat /tmp/fuzz.$$.log; rm -f /tmp/fuzz.$$.log
      echo "fuzz: $pkg $target FAILED (the failing input is under $dir/testdata/fuzz/$target)" >&2
      exit 1
    }
    count=$((count + 1))
  done
done
rm -f /tmp/fuzz.$$.log
echo "fuzz: $count targets ran for $fuzztime each, no failures"
