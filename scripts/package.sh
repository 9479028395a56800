#!/usr/bin/env bash
# package.sh builds what the hwauthd package ships and packages it.
#
#   package.sh stage     build the binaries into $BUILD and generate the
#                        man pages, hwauthd.toml, completions and changelog
#   package.sh deb       stage, then build $BUILD/hwauthd_VERSION_ARCH.deb
#                        with nfpm (a Go tool of the packaging/tools module)
#   package.sh install   stage, then install into $DESTDIR$PREFIX (plain
#                        install without dpkg; units and rules under $PREFIX)
#   package.sh docs      regenerate the copies kept in the repository
#                        (docs/man/*, packaging/hwauthd.toml)
#
# Environment: BUILD (default build), VERSION (default from git), GO,
# DEB_MAINTAINER, DESTDIR, PREFIX (default /usr/local), SYSCONFDIR (default /etc), BINDIR
# (take hwauthd and hwauthctl already built there instead of building them),
# PAMDIR (default /lib/MULTIARCH/security, where libpam looks for modules).
set -euo pipefail

cd "$(dirname "$0")/.."
GO=${GO:-go}
BUILD=$(realpath -m "${BUILD:-build}")
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
DESTDIR=${DESTDIR:-}
PAMDIR=${PAMDIR:-/lib/$(gcc -print-multiarch)/security}

version() {
	local when hash
	when=$(git log -1 --format=%cd --date=format:%Y%m%d 2>/dev/null || date -u +%Y%m%d)
	hash=$(git rev-parse --short=8 HEAD 2>/dev/null || echo unknown)
	echo "0.1.0~git${when}.${hash}"
}
VERSION=${VERSION:-$(version)}
DEB_MAINTAINER=${DEB_MAINTAINER:-hwauthd developers <hwauthd@users.noreply.github.com>}

build_binaries() {
	mkdir -p "$BUILD"
	if [ -n "${BINDIR:-}" ]; then
		[ "$(realpath "$BINDIR")" = "$BUILD" ] && return
		install -m755 "$BINDIR/hwauthd" "$BINDIR/hwauthctl" "$BINDIR/hwauthd-pkcs11" \
			"$BINDIR/hwauthd-pam-helper" "$BUILD/"
		install -m644 "$BINDIR/pam_hwauth.so" "$BUILD/"
		if [ -f "$BINDIR/libifdhwauthd.so" ]; then
			install -m644 "$BINDIR/libifdhwauthd.so" "$BUILD/"
		else
			reader_driver "$BUILD"
		fi
		return
	fi
	# Hardened as Debian builds C (dpkg-buildflags, hardening=+all): PIE,
	# full RELRO (-z relro -z now), _FORTIFY_SOURCE and the stack protector
	# for the cgo code, linked by the system linker with those flags.
	local cflags ldflags
	cflags="$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CPPFLAGS) $(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get CFLAGS)"
	ldflags=$(DEB_BUILD_MAINT_OPTIONS=hardening=+all dpkg-buildflags --get LDFLAGS)
	CGO_ENABLED=1 CGO_CFLAGS="$cflags" CGO_LDFLAGS="$ldflags" "$GO" build -trimpath -buildmode=pie \
		-ldflags "-s -w -linkmode=external -X main.version=$VERSION" \
		-o "$BUILD/" ./cmd/hwauthd ./cmd/hwauthctl ./cmd/hwauthd-pkcs11 ./cmd/hwauthd-pam-helper
	pam_module "$BUILD" /usr/libexec/hwauthd/hwauthd-pam-helper
	reader_driver "$BUILD"
}

# reader_driver builds pcscd's driver for hwauthd's readers into $1 (make
# vreader-driver: hardened flags) and strips it.
reader_driver() {
	make --no-print-directory vreader-driver BUILD="$1" >/dev/null
	strip --strip-unneeded "$1/libifdhwauthd.so"
}

# pam_module builds the C PAM module into $1 (make pam-module: hardened
# flags), set to run the helper from $2, and strips it as the Go binaries are.
pam_module() {
	make --no-print-directory pam-module BUILD="$1" PAM_HELPER="$2" >/dev/null
	strip --strip-unneeded "$1/pam_hwauth.so"
}

generate() {
	rm -rf "$BUILD/gen" "$BUILD/completions" "$BUILD/man"
	"$GO" run ./packaging/gendocs -out "$BUILD/gen" \
		-hwauthd "$BUILD/hwauthd" -hwauthctl "$BUILD/hwauthctl" \
		-completions "$BUILD/completions"
	# The copyright file lists every Go module compiled into the binaries.
	"$GO" run ./packaging/gencopyright -go "$GO" -head packaging/debian/copyright -o "$BUILD/copyright" \
		"$BUILD/hwauthd" "$BUILD/hwauthctl" "$BUILD/hwauthd-pkcs11" "$BUILD/hwauthd-pam-helper"
	mkdir -p "$BUILD/man"
	for page in "$BUILD"/gen/docs/man/* docs/man/pam_hwauth.8; do
		gzip -9n <"$page" >"$BUILD/man/$(basename "$page").gz"
	done
}

changelog() {
	local date
	date=$(date -R -u -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")
	{
		printf 'hwauthd (%s) unstable; urgency=medium\n\n' "$VERSION"
		printf '  * Built from commit %s.\n\n' "$(git rev-parse HEAD 2>/dev/null || echo unknown)"
		printf ' -- %s  %s\n' "$DEB_MAINTAINER" "$date"
	} | gzip -9n >"$BUILD/changelog.gz"
	# The API reference, which error hints point at.
	gzip -9n <docs/api.md >"$BUILD/api.md.gz"
}

stage() {
	build_binaries
	generate
	changelog
}

deb() {
	stage
	local arch multiarch nfpm
	arch=$(dpkg --print-architecture)
	multiarch=$(gcc -print-multiarch)
	# nfpm is a tool of its own module (packaging/tools/go.mod), so the
	# product's go.mod lists only what hwauthd links.
	nfpm=$("$GO" -C packaging/tools tool -n nfpm)
	BUILD="$BUILD" VERSION="$VERSION" DEB_ARCH="$arch" DEB_MULTIARCH="$multiarch" DEB_MAINTAINER="$DEB_MAINTAINER" \
		"$nfpm" pkg -p deb -f packaging/nfpm.yaml \
		-t "$BUILD/hwauthd_${VERSION}_${arch}.deb"
}

# install copies what the .deb holds into $DESTDIR, with the programs under
# $PREFIX and the units rewritten to run them from there. What is read only
# from fixed places goes there whatever the prefix: the PAM module into
# $PAMDIR (libpam looks nowhere else for a module named without a path),
# the polkit rule into $SYSCONFDIR/polkit-1/rules.d (polkit reads that and
# /usr/share/polkit-1/rules.d only), zsh's completion into site-functions
# below /usr (vendor-completions is read only there). systemd, sysusers.d,
# tmpfiles.d and udev read /usr/local/lib as well as /usr/lib.
install_files() {
	stage
	local d=$DESTDIR p=$DESTDIR$PREFIX lib=$DESTDIR$PREFIX/lib
	install -Dm755 "$BUILD/hwauthd" "$p/sbin/hwauthd"
	install -Dm755 "$BUILD/hwauthctl" "$p/bin/hwauthctl"
	install -Dm755 "$BUILD/hwauthd-pkcs11" "$p/sbin/hwauthd-pkcs11"
	install -Dm755 "$BUILD/hwauthd-pam-helper" "$p/libexec/hwauthd/hwauthd-pam-helper"
	# The module runs the helper from where this install puts it.
	pam_module "$BUILD/prefix" "$PREFIX/libexec/hwauthd/hwauthd-pam-helper"
	install -Dm644 "$BUILD/prefix/pam_hwauth.so" "$d$PAMDIR/pam_hwauth.so"
	install -Dm644 "$BUILD/libifdhwauthd.so" "$lib/pcsc/drivers/serial/libifdhwauthd.so"
	# pcscd reads /etc/reader.conf.d only; the driver path in it is the .deb's.
	sed -e "s|/usr/lib/pcsc/drivers/serial/|$PREFIX/lib/pcsc/drivers/serial/|" packaging/pcscd/hwauthd |
		install -Dm644 /dev/stdin "$d$SYSCONFDIR/reader.conf.d/hwauthd"
	install -Dm644 packaging/pam/hwauth "$p/share/doc/hwauthd/examples/pam.d/hwauth"
	install -Dm644 "$BUILD/copyright" "$p/share/doc/hwauthd/copyright"
	install -Dm644 "$BUILD/api.md.gz" "$p/share/doc/hwauthd/api.md.gz"
	install -Dm644 packaging/pam/pam-configs-hwauthd "$p/share/pam-configs/hwauthd"
	install -Dm644 "$BUILD/gen/packaging/hwauthd.toml" "$d$SYSCONFDIR/hwauthd/hwauthd.toml"
	for unit in hwauthd.service hwauthd.socket; do
		sed -e "s|/usr/sbin/hwauthd|$PREFIX/sbin/hwauthd|" \
			-e "s|/etc/hwauthd/hwauthd.toml|$SYSCONFDIR/hwauthd/hwauthd.toml|" \
			"packaging/systemd/$unit" | install -Dm644 /dev/stdin "$lib/systemd/system/$unit"
	done
	install -Dm644 packaging/sysusers/hwauthd.conf "$lib/sysusers.d/hwauthd.conf"
	install -Dm644 packaging/tmpfiles/hwauthd.conf "$lib/tmpfiles.d/hwauthd.conf"
	install -Dm644 packaging/udev/70-hwauthd-fido.rules "$lib/udev/rules.d/70-hwauthd-fido.rules"
	if [ "$PREFIX" = /usr ]; then
		install -Dm644 packaging/polkit/50-hwauthd.rules "$p/share/polkit-1/rules.d/50-hwauthd.rules"
		install -Dm644 "$BUILD/completions/_hwauthctl" "$p/share/zsh/vendor-completions/_hwauthctl"
	else
		install -Dm644 packaging/polkit/50-hwauthd.rules "$d$SYSCONFDIR/polkit-1/rules.d/50-hwauthd.rules"
		install -Dm644 "$BUILD/completions/_hwauthctl" "$p/share/zsh/site-functions/_hwauthctl"
	fi
	install -Dm644 -t "$p/share/man/man8" "$BUILD/man/hwauthd.8.gz" "$BUILD/man/pam_hwauth.8.gz" "$BUILD/man/hwauthd-pkcs11.8.gz"
	install -Dm644 -t "$p/share/man/man1" "$BUILD/man/hwauthctl.1.gz"
	install -Dm644 -t "$p/share/man/man5" "$BUILD/man/hwauthd.toml.5.gz"
	install -Dm644 "$BUILD/completions/hwauthctl" "$p/share/bash-completion/completions/hwauthctl"
	install -Dm644 "$BUILD/completions/hwauthctl.fish" "$p/share/fish/vendor_completions.d/hwauthctl.fish"
	echo "installed into ${DESTDIR:-/}; as root run: systemd-sysusers; systemd-tmpfiles --create; udevadm control --reload-rules; systemctl daemon-reload; systemctl enable --now hwauthd.socket"
	if [ "$PREFIX" != /usr ]; then
		echo "pam-auth-update reads /usr/share/pam-configs only: to use its profile, copy $PREFIX/share/pam-configs/hwauthd there (or include $PREFIX/share/doc/hwauthd/examples/pam.d/hwauth by hand)"
	fi
}

docs() {
	build_binaries
	"$GO" run ./packaging/gendocs -hwauthd "$BUILD/hwauthd" -hwauthctl "$BUILD/hwauthctl"
}

case "${1:-}" in
stage) stage ;;
deb) deb ;;
install) install_files ;;
docs) docs ;;
*) echo "usage: $0 stage|deb|install|docs" >&2; exit 2 ;;
esac
