#!/usr/bin/env bash
# bench.sh runs hwauthd's benchmarks on the emulated hardware and prints, for
# each path through hwauthd, its time against the direct path on the same
# device. BENCHTIME scales the runs (default: counts per benchmark below).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

bench() { # PACKAGE PATTERN ITERATIONS
  echo "bench: $1 $2" >&2
  go test -run '^$' -bench "$2" -benchtime "${BENCHTIME:-$3}" -count 1 "$1" |
    grep -E '^Benchmark' | sed "s|^|${1#./} |" | tee -a "$log" >&2
}
bench ./pcsc Transmit 2000x
bench ./e2e 'PIVSign|VSCSign|AssertDaemon' 300x
bench ./e2e InsertionToEvent 10x
bench ./tpm . 300x
bench ./fido . 500x
bench ./pkcs11 . 200x
bench ./store/boltstore . 2000x
bench ./store/pgstore . 500x

# ns PACKAGE NAME: the ns/op of a benchmark.
ns() { awk -v p="$1" -v n="Benchmark$2" '$1 == p && $2 ~ "^"n"(-[0-9]+)?$" { print $4; exit }' "$log"; }
row() { # LABEL PKG/THROUGH PKG/DIRECT
  local a b
  a=$(ns "${2%/*}" "${2##*/}"); b=$(ns "${3%/*}" "${3##*/}")
  if [ -z "$a" ] || [ -z "$b" ]; then printf '%-44s %12s %12s %8s\n' "$1" "${a:-n/a}" "${b:-n/a}" "n/a"; return; fi
  awk -v l="$1" -v a="$a" -v b="$b" 'BEGIN { printf "%-44s %10.3f ms %10.3f ms %7.2fx\n", l, a/1e6, b/1e6, a/b }'
}
echo
printf '%-44s %13s %13s %8s\n' "operation (through hwauthd vs direct)" "through" "direct" "ratio"
row "PIV sign P-256, PIN: socket vs PC/SC"       e2e/PIVSignDaemon e2e/PIVSignDirect
row "virtual card sign: socket vs TPM2_Sign"     e2e/VSCSignDaemon tpm/SignDirect
row "virtual card sign: engine vs TPM2_Sign"     tpm/SignEngine tpm/SignDirect
row "virtual card sign: socket vs tpm2-pkcs11"   e2e/VSCSignDaemon tpm/SignTPM2PKCS11Login
row "  (tpm2-pkcs11 logged in once)"             e2e/VSCSignDaemon tpm/SignTPM2PKCS11
row "FIDO2 assertion: socket vs go-libfido2"     e2e/AssertDaemon fido/AssertGoLibfido2Direct
row "FIDO2 assertion: backend vs go-libfido2"    fido/AssertBackend fido/AssertGoLibfido2Direct
row "PKCS#11 sign: helper vs miekg/pkcs11"       pkcs11/SignBackend pkcs11/SignDirect
row "p11-kit server vs miekg/pkcs11"             pkcs11/SignP11Kit pkcs11/SignDirect
echo
echo "Other measurements:"
awk '$2 ~ /^Benchmark(Transmit|InsertionToEvent|Register|Lookup)/ { print "  " $0 }' "$log"
echo "  (insertion-to-event is dominated by pcscd polling vpcd's card presence every 400 ms; readers with interrupt-driven presence report at once)"
