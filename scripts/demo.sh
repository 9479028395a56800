#!/usr/bin/env bash
# demo.sh walks through hwauthd with emulated hardware: a private pcscd with
# a vpcd reader, an emulated PIV card (pcsc/pcsctest/pivcard), hwauthd on a private
# socket, and hwauthctl as the client. Nothing outside a temporary directory
# is touched, and everything is stopped and removed at the end.
set -euo pipefail

build=${1:-build}
build=$(cd "$build" && pwd)
ctl() { "$build/hwauthctl" --socket "$T/hwauthd.sock" "$@"; }
# Headings are bold on a terminal only: no escape codes in a log or a pipe.
if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi
run() { printf '$ hwauthctl'; printf ' %q' "$@"; printf '\n'; ctl "$@"; }
die() { echo "demo: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root (it starts a private pcscd in its own namespaces)"
T=$(mktemp -d /tmp/hwauthd-demo.XXXXXX)
chmod 755 "$T"
pids=()
cleanup() {
  if [ -n "${card_in:-}" ]; then { echo quit >&"$card_in"; } 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$T"
}
trap cleanup EXIT

# waitfor CMD... retries a check every 50 ms for up to 10 s.
waitfor() {
  for _ in $(seq 200); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  die "timed out waiting for: $*"
}

say "1. A private pcscd with a virtual (vpcd) reader"
mkdir -p "$T/run" "$T/conf" "$T/state"
port=35963
cat >"$T/conf/vpcd" <<CONF
FRIENDLYNAME "Demo Reader"
DEVICENAME   /dev/null:$port
LIBPATH      /usr/lib/pcsc/drivers/serial/libifdvpcd.so
CHANNELID    $port
CONF
unshare -m -n sh -c "ip link set lo up && mount -t tmpfs tmpfs /run && mkdir -p /run/pcscd \
  && mount --bind '$T/run' /run/pcscd && exec pcscd -f -c '$T/conf'" >"$T/pcscd.log" 2>&1 &
pcscd_pid=$!
pids+=("$pcscd_pid")
export PCSCLITE_CSOCK_NAME=$T/run/pcscd.comm
waitfor test -S "$PCSCLITE_CSOCK_NAME"
echo "pcscd is running (pid $pcscd_pid), socket $PCSCLITE_CSOCK_NAME"

say "2. hwauthd on a private socket"
cat >"$T/hwauthd.toml" <<CONF
[daemon]
socket = "$T/hwauthd.sock"
state_dir = "$T/state"
[tpm]
enabled = false
[fido]
enabled = false
[pkcs11]
enabled = false
CONF
"$build/hwauthd" --config "$T/hwauthd.toml" 2>"$T/hwauthd.log" &
pids+=($!)
waitfor test -S "$T/hwauthd.sock"
run status
ctl watch >"$T/events.log" 2>&1 &
pids+=($!)

say "3. Insert the card: hwauthd detects it"
coproc CARD { nsenter --net="/proc/$pcscd_pid/ns/net" "$build/pivcard" --vpcd "127.0.0.1:$port" --control --label "$(id -un)" --state "$T/card.json"; }
card_in=${CARD[1]}
pids+=("$CARD_PID")
waitfor sh -c "'$build/hwauthctl' --socket '$T/hwauthd.sock' list | grep -q piv-"
id=$(ctl --json list | sed -n 's/.*"id": *"\(piv-[0-9a-f]*\)".*/\1/p' | head -1)
[ -n "$id" ] || die "the card was not listed"
run list
run readers

say "4. A wrong PIN: the card says how many tries are left"
printf '999999\n' | run --pin-stdin pin verify "$id" || echo "(exit code $?: wrong PIN, as expected)"

say "5. The right PIN"
printf '123456\n' | run --pin-stdin pin verify "$id"

say "6. Sign a document on the card; check the signature with the card's certificate"
echo "Contract between Alice and Bob, $(date -u +%F)" >"$T/document.txt"
printf '123456\n' | run --pin-stdin sign "$id" --key 9a --algorithm ecdsa-sha256 --file "$T/document.txt" --out "$T/document.sig"
ctl show --pem "$id" | awk '/BEGIN CERTIFICATE/,/END CERTIFICATE/' >"$T/card.pem"
openssl x509 -in "$T/card.pem" -noout -pubkey >"$T/card.pub"
printf '$ openssl dgst -sha256 -verify card.pub -signature document.sig document.txt\n'
openssl dgst -sha256 -verify "$T/card.pub" -signature "$T/document.sig" "$T/document.txt"

say "7. Register the card to $(id -un) and sign in"
printf '123456\n' | run --pin-stdin register --label "Demo card" "$id"
run registrations
printf '123456\n' | run --pin-stdin signin
session=$(ctl --json sessions | sed -n 's/.*"id": *"\([0-9a-f]*\)".*/\1/p' | head -1)
run sessions
run signout "$session"

say "8. Remove the card"
echo remove >&"$card_in"
waitfor sh -c "! '$build/hwauthctl' --socket '$T/hwauthd.sock' list | grep -q '$id'"
run list

say "Events hwauthd sent meanwhile (hwauthctl watch)"
cat "$T/events.log"
say "Done: the demo stops everything and removes $T"
