# hwauthd — build, test, benchmark and demo. `make demo` and `make test` work
# from a fresh clone on Debian 12 as root: they install what is missing first.

GO        ?= go
BUILD     ?= build
PKGS      ?= ./...
TESTFLAGS ?=
FUZZTIME  ?= 10000x

.PHONY: all deps build pam test vet staticcheck fuzz bench demo clean

all: build

deps:
	@./scripts/install-deps.sh

build:
	@mkdir -p $(BUILD)
	$(GO) build -o $(BUILD)/ ./cmd/...

# The PAM module, a shared object for /etc/pam.d (see packaging/pam/hwauth).
pam:
	@mkdir -p $(BUILD)
	CGO_ENABLED=1 $(GO) build -buildmode=c-shared -o $(BUILD)/pam_hwauth.so ./pam/module
	@rm -f $(BUILD)/pam_hwauth.h

vet:
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

demo: deps build
	@./scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

include packaging/make.mk
