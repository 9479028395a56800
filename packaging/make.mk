# Packaging targets of hwauthd. The Makefile includes this file
# (`include packaging/make.mk`); the work is done by scripts/package.sh.
#
#   make deb       build/hwauthd_VERSION_ARCH.deb (nfpm, a Go tool of the
#                  packaging/tools module, kept out of the product's go.mod)
#   make install   plain install into $(DESTDIR)$(PREFIX) (default /usr/local)
#   make docs      refresh docs/man/* and packaging/hwauthd.toml from the code

GO      ?= go
BUILD   ?= build
PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: deb install docs

deb:
	@GO=$(GO) BUILD=$(BUILD) ./scripts/package.sh deb

install:
	@GO=$(GO) BUILD=$(BUILD) DESTDIR=$(DESTDIR) PREFIX=$(PREFIX) ./scripts/package.sh install

docs:
	@GO=$(GO) BUILD=$(BUILD) ./scripts/package.sh docs
