#!/usr/bin/env bash
# install-deps.sh installs what hwauthd's build, tests and demo need on Debian
# 12 and is silent when nothing is missing. It is idempotent and needs root
# only when something must be installed.
set -euo pipefail

packages=(
  pcscd libpcsclite-dev vsmartcard-vpcd opensc pcsc-tools
  swtpm swtpm-tools tpm2-tools libtpm2-pkcs11-1 libtpm2-pkcs11-tools tpm2-abrmd libtss2-tcti-tabrmd0 dbus libglib2.0-bin python3-dbusmock
  softhsm2 p11-kit gnutls-bin libengine-pkcs11-openssl libfido2-dev fido2-tools
  libpam-wrapper pamtester libpam0g-dev postgresql yubico-piv-tool libnss3-tools
  gcc make util-linux iproute2 curl openssl lintian systemd systemd-container debootstrap
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages start system services where systemd runs; tests start their
  # own private instances and never use these.
fi

if ! command -v go >/dev/null 2>&1; then
  echo "install-deps: Go 1.26 or newer is required (not found on PATH)" >&2
  exit 1
fi

# Modules are fetched from the module proxy once; a warm cache costs nothing.
go mod download
