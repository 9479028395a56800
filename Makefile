# hwauthd — build, test, benchmark and demo. `make demo` and `make test` work
# from a fresh clone on Debian 12 as root: they install what is missing first.

GO        ?= go
BUILD     ?= build
PKGS      ?= ./...
TESTFLAGS ?=
FUZZTIME  ?= 10000x

.PHONY: all deps build emulated-card pam pam-module vreader-driver test vet staticcheck fuzz bench demo clean

all: build

deps:
	@./scripts/install-deps.sh

build:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/ ./cmd/...

# The emulated PIV card (pcsc/pcsctest/pivcard) that `make demo` inserts into
# a vpcd reader: test support, never packaged.
emulated-card:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/ ./pcsc/pcsctest/pivcard

# The PAM module pam_hwauth.so (C, no Go runtime in the host process; see
# packaging/pam/hwauth) and the helper it starts, which the module runs from
# PAM_HELPER. The module is built hardened (stack protector, fortified
# functions, full RELRO, no executable stack) and exports only pam_sm_*.
PAM_HELPER  ?= /usr/libexec/hwauthd/hwauthd-pam-helper
PAM_CFLAGS   = -std=gnu11 -O2 -g -Wall -Wextra -Wformat=2 -Werror=format-security \
	-fPIC -fvisibility=hidden -fstack-protector-strong -fstack-clash-protection \
	-fcf-protection -D_FORTIFY_SOURCE=2
PAM_LDFLAGS  = -shared -Wl,-z,relro,-z,now -Wl,-z,noexecstack -Wl,-z,defs -Wl,--as-needed

pam: pam-module
	$(GO) build -o $(BUILD)/ ./cmd/hwauthd-pam-helper

pam-module:
	@mkdir -p $(BUILD)
	$(CC) $(PAM_CFLAGS) $(CFLAGS) -DHW_HELPER_PATH='"$(PAM_HELPER)"' \
		-o $(BUILD)/pam_hwauth.so pam/module/pam_hwauth.c $(PAM_LDFLAGS) $(LDFLAGS) -lpam

# hwauthd's reader driver for pcscd (libifdhwauthd.so, see pcsc/vreader):
# TPM virtual smart cards appear in readers of their own through it. Built
# hardened like the PAM module; exports only the IFDH* entry points.
vreader-driver:
	@mkdir -p $(BUILD)
	$(CC) $(PAM_CFLAGS) $(CFLAGS) -I/usr/include/PCSC \
		-o $(BUILD)/libifdhwauthd.so pcsc/vreader/driver/ifd-hwauthd.c $(PAM_LDFLAGS) $(LDFLAGS)

vet:
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt -w needed on:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

# The whole suite: static checks, every test (integration tests start their own
# pcscd, swtpm and PostgreSQL) under the race detector, then a short run of
# every fuzz target.
test: deps vet staticcheck
	$(GO) test -race -count=1 -timeout 12m $(TESTFLAGS) $(PKGS)
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

fuzz:
	@FUZZTIME=$(FUZZTIME) ./scripts/fuzz-smoke.sh

# Benchmarks against the direct paths, printed as ratios.
bench: deps
	@./scripts/bench.sh

demo: deps build emulated-card
	@./scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

include packaging/make.mk
