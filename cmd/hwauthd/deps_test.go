package main

import (
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// The dependency rules of the daemon's layers (tailscale's
// cmd/tailscaled/deps_test.go is the model): cgo only at the leaves, the
// core free of the hardware packages, and the optional backends linked
// only through cmd/hwauthd/builtins' build tags.

const module = "github.com/hwauthd/hwauthd/"

// core is the daemon without its hardware: the device contract, the API, the
// route table and sign-in, the registry, the configuration and the error
// vocabulary; and the PAM helper, which runs for every sign-in through PAM.
var core = []string{module + "device/...", module + "daemon/...", module + "ipc/...", module + "store/...", module + "config/...", module + "hwerr/...",
	module + "pam/...", module + "cmd/hwauthd-pam-helper"}

// hardware are the packages that drive devices; the core reaches them only
// through the device contract.
var hardware = []string{module + "pcsc", module + "tpm", module + "fido", module + "pkcs11"}

// notHardware lists packages under the hardware folders that the core and
// hwauthctl may import: they drive no device and need no cgo. fido/webauthn
// checks WebAuthn data; tpm/attest verifies a TPM's key attestations and
// tpm/adminkey signs a virtual card's admin challenges, on IT's side.
var notHardware = []string{module + "fido/webauthn", module + "tpm/attest", module + "tpm/adminkey"}

// pkg is the part of `go list -json` these tests read.
type pkg struct {
	ImportPath string
	Standard   bool
	CgoFiles   []string
	ForTest    string
	Error      *struct{ Err string }
}

// list runs `go list -deps -json` with env added to the environment.
func list(t *testing.T, env []string, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-e", "-deps", "-json=ImportPath,Standard,CgoFiles,ForTest,Error"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Error != nil {
			t.Errorf("go list %s: %s: %s", strings.Join(args, " "), p.ImportPath, p.Error.Err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list %s: %v", strings.Join(args, " "), err)
	}
	return pkgs
}

// isHardware reports whether path is one of the hardware packages.
func isHardware(path string) bool {
	if slices.Contains(notHardware, path) {
		return false
	}
	for _, h := range hardware {
		if path == h || strings.HasPrefix(path, h+"/") {
			return true
		}
	}
	return false
}

// cgoBindings returns the packages outside the standard library that have
// cgo files among pkgs (listed with cgo on, so that every binding shows).
func cgoBindings(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		if !p.Standard && len(p.CgoFiles) > 0 && !slices.Contains(out, p.ImportPath) {
			out = append(out, p.ImportPath)
		}
	}
	return out
}

// allBindings returns the cgo bindings that anything in the module, tests
// included, uses.
func allBindings(t *testing.T) []string {
	b := cgoBindings(list(t, []string{"CGO_ENABLED=1"}, "-test", module+"..."))
	if len(b) == 0 {
		t.Fatal("no cgo binding found in the module: the listing is broken")
	}
	return b
}

// without fails the test for each package of pkgs that is in bad.
func without(t *testing.T, what string, pkgs []pkg, bad []string) {
	t.Helper()
	for _, p := range pkgs {
		if slices.Contains(bad, p.ImportPath) {
			t.Errorf("%s depends on %s", what, p.ImportPath)
		}
	}
}

// cgoTestSupport are test-only packages in the core's folders that use cgo
// on purpose: they compile the product's C code into Go tests (the PAM
// module's frame parser, fuzzed against pam/relay). They are not roots of
// the core; a core package that imported one would still be caught.
var cgoTestSupport = []string{module + "pam/internal/cmodule"}

// coreRoots returns the import paths of the core's packages, without
// cgoTestSupport.
func coreRoots(t *testing.T) []string {
	var roots []string
	for _, p := range list(t, []string{"CGO_ENABLED=1"}, append([]string{"-deps=false"}, core...)...) {
		if !slices.Contains(cgoTestSupport, p.ImportPath) {
			roots = append(roots, p.ImportPath)
		}
	}
	if len(roots) < len(core) {
		t.Fatalf("the core's patterns list %d packages: the listing is broken", len(roots))
	}
	return roots
}

// TestCoreHasNoHardware: the core imports no hardware package and no cgo
// binding.
func TestCoreHasNoHardware(t *testing.T) {
	pkgs := list(t, []string{"CGO_ENABLED=1"}, coreRoots(t)...)
	for _, p := range pkgs {
		if isHardware(p.ImportPath) {
			t.Errorf("the core depends on the hardware package %s", p.ImportPath)
		}
	}
	if b := cgoBindings(pkgs); len(b) > 0 {
		t.Errorf("the core depends on cgo bindings %v", b)
	}
}

// testedWithoutCgo are the packages whose tests build without cgo: the core,
// the TPM (pure Go, driven against swtpm) and the cgo-free test stacks
// (testenv's swtpm, PostgreSQL, PAM) they use. The PC/SC test stack,
// internal/testenv/pcscenv, needs libpcsclite and is not among them.
var testedWithoutCgo = append([]string{module + "tpm/...", module + "internal/testenv"}, core...)

// TestCLIHasNoHardware: hwauthctl is a client of the daemon's API and,
// for IT, a verifier of attestations and a signer of admin challenges; it
// links no hardware package (no TPM engine, no PC/SC) and no cgo binding.
func TestCLIHasNoHardware(t *testing.T) {
	pkgs := list(t, []string{"CGO_ENABLED=1"}, module+"cmd/hwauthctl")
	if len(pkgs) == 0 || pkgs[len(pkgs)-1].ImportPath != module+"cmd/hwauthctl" {
		t.Fatal("go list did not list cmd/hwauthctl: the listing is broken")
	}
	for _, p := range pkgs {
		if isHardware(p.ImportPath) {
			t.Errorf("hwauthctl depends on the hardware package %s", p.ImportPath)
		}
	}
	if b := cgoBindings(pkgs); len(b) > 0 {
		t.Errorf("hwauthctl depends on cgo bindings %v", b)
	}
}

// TestCoreTestsWithoutCgo: the tests of the core and of the TPM bring in no
// cgo binding when built without cgo.
func TestCoreTestsWithoutCgo(t *testing.T) {
	pkgs := list(t, []string{"CGO_ENABLED=0"}, append([]string{"-test"}, testedWithoutCgo...)...)
	without(t, "a test of the core or the TPM built without cgo", pkgs, allBindings(t))
}

// TestCoreTestsCompileWithoutCgo: go vet, which type-checks every package
// with its tests, passes on the core and the TPM with CGO_ENABLED=0. The
// listing above sees imports; this sees that the tests compile, so that no
// test of the core calls into a stack that exists only with cgo.
func TestCoreTestsCompileWithoutCgo(t *testing.T) {
	cmd := exec.Command("go", append([]string{"vet"}, testedWithoutCgo...)...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("CGO_ENABLED=0 go vet of the core, the TPM and testenv: %v\n%s", err, out)
	}
}

// TestTestenvWithoutCgo: testenv itself, listed with cgo on so that files
// built only with cgo count too, depends on no cgo binding: the PC/SC stack
// (libpcsclite through ebfe/scard) stays in internal/testenv/pcscenv.
func TestTestenvWithoutCgo(t *testing.T) {
	pkgs := list(t, []string{"CGO_ENABLED=1"}, module+"internal/testenv")
	if len(pkgs) == 0 || pkgs[len(pkgs)-1].ImportPath != module+"internal/testenv" {
		t.Fatal("go list did not list internal/testenv: the listing is broken")
	}
	if b := cgoBindings(pkgs); len(b) > 0 {
		t.Errorf("internal/testenv depends on cgo bindings %v; PC/SC belongs in internal/testenv/pcscenv", b)
	}
	pcscenv := list(t, []string{"CGO_ENABLED=1"}, module+"internal/testenv/pcscenv")
	if !slices.Contains(cgoBindings(pcscenv), "github.com/ebfe/scard") {
		t.Error("internal/testenv/pcscenv does not use ebfe/scard: is this check still looking at the right packages?")
	}
}

// TestBuiltinsFollowTags: the daemon links the PC/SC and FIDO2 backends only
// with cgo and without no_pcsc / no_fido, the PKCS#11 one without no_pkcs11,
// and a build without cgo has no cgo binding at all.
func TestBuiltinsFollowTags(t *testing.T) {
	bindings := allBindings(t)
	for _, tc := range []struct {
		env, tags string
		want      []string // backend packages linked
	}{
		{"CGO_ENABLED=1", "", []string{"fido/fidobackend", "pcsc/pivbackend", "pkcs11", "tpm/vscbackend"}},
		{"CGO_ENABLED=0", "", []string{"pkcs11", "tpm/vscbackend"}},
		{"CGO_ENABLED=1", "no_pcsc,no_fido,no_pkcs11", []string{"tpm/vscbackend"}},
		{"CGO_ENABLED=1", "no_pcsc", []string{"fido/fidobackend", "pkcs11", "tpm/vscbackend"}},
	} {
		pkgs := list(t, []string{tc.env}, "-tags="+tc.tags, module+"cmd/hwauthd")
		var got []string
		for _, p := range pkgs {
			switch name := strings.TrimPrefix(p.ImportPath, module); name {
			case "fido/fidobackend", "pcsc/pivbackend", "pkcs11", "tpm/vscbackend":
				got = append(got, name)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s -tags=%q links %v, want %v", tc.env, tc.tags, got, tc.want)
		}
		if tc.env == "CGO_ENABLED=0" {
			without(t, "hwauthd built without cgo", pkgs, bindings)
		}
	}
}

// TestGoModListsWhatIsLinked: every module the product's go.mod requires is
// needed (on some platform; go mod why ignores build tags) by a package of
// the product or by its one tool, staticcheck. Build tools such as nfpm live
// in packaging/tools/go.mod.
func TestGoModListsWhatIsLinked(t *testing.T) {
	out, err := exec.Command("go", "mod", "edit", "-json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var mod struct{ Require []struct{ Path string } }
	if err := json.Unmarshal(out, &mod); err != nil {
		t.Fatal(err)
	}
	if len(mod.Require) == 0 {
		t.Fatal("go.mod requires nothing: the listing is broken")
	}
	args := []string{"mod", "why", "-m"}
	for _, r := range mod.Require {
		args = append(args, r.Path)
	}
	out, err = exec.Command("go", args...).Output()
	if err != nil {
		t.Fatalf("go mod why: %v", err)
	}
	// One stanza per module: "# module", then the chain of packages from
	// the main module's package that needs it, or why it is not needed.
	stanzas := strings.Split("\n"+strings.TrimSpace(string(out)), "\n# ")[1:]
	if len(stanzas) != len(mod.Require) {
		t.Fatalf("go mod why answered %d stanzas for %d modules:\n%s", len(stanzas), len(mod.Require), out)
	}
	for _, st := range stanzas {
		lines := strings.Split(st, "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[1], module) && lines[1] != "honnef.co/go/tools/cmd/staticcheck" {
			t.Errorf("go.mod requires %s, which the product does not link:\n%s", lines[0], st)
		}
	}
}

// testOnly are the packages that exist for tests: emulators, fakes and test
// stacks. Their paths say so (…test, …/fidotest/…, …/pcsctest/…, internal/testenv).
var testOnly = []string{module + "internal/testenv", module + "internal/testenv/pcscenv", module + "fido/fidotest/", module + "pcsc/pcsctest/", module + "daemon/daemontest", module + "ipc/apitest", module + "pam/internal/fakeapi", module + "pam/internal/fakehelper", module + "pam/internal/cmodule", module + "logind/logindtest"}

// TestProgramsLinkNoTestCode: no program the package ships links a
// test-only package (the FIDO2 interposer above all: TESTING.md says
// production binaries never link it).
func TestProgramsLinkNoTestCode(t *testing.T) {
	programs := []string{module + "cmd/hwauthd", module + "cmd/hwauthctl", module + "cmd/hwauthd-pkcs11", module + "cmd/hwauthd-pam-helper"}
	for _, p := range list(t, []string{"CGO_ENABLED=1"}, programs...) {
		for _, bad := range testOnly {
			if p.ImportPath == bad || strings.HasSuffix(bad, "/") && strings.HasPrefix(p.ImportPath, bad) {
				t.Errorf("a shipped program links the test-only package %s", p.ImportPath)
			}
		}
	}
}

// TestSignInBelowTheAPI: the sign-in domain (daemon/signin) sits below the
// HTTP layer, as tailscale's ipnlocal sits below localapi: it imports
// neither the daemon's handlers nor the API server or client, so its rules
// are decided, and tested, without HTTP, and the daemon alone words its
// errors for the wire. Nor does it speak the API's types, not even through
// the device contract: package ipc is not among its dependencies (the
// daemon converts at the edge).
func TestSignInBelowTheAPI(t *testing.T) {
	pkgs := list(t, []string{"CGO_ENABLED=0"}, module+"daemon/signin")
	if len(pkgs) == 0 || pkgs[len(pkgs)-1].ImportPath != module+"daemon/signin" {
		t.Fatal("go list did not list daemon/signin: the listing is broken")
	}
	without(t, "daemon/signin", pkgs, []string{module + "daemon", module + "ipc", module + "ipc/server", module + "ipc/client", module + "ipc/apitest"})
}

// TestHardwareSpeaksNoWire: the hardware packages speak the device
// contract (package device: crypto keys, parsed certificates, typed
// states), never the API's wire types: package ipc is the daemon's to
// render, once, at its edge.
func TestHardwareSpeaksNoWire(t *testing.T) {
	var roots []string
	for _, h := range hardware {
		roots = append(roots, h+"/...")
	}
	pkgs := list(t, []string{"CGO_ENABLED=1"}, roots...)
	var checked int
	for _, p := range pkgs {
		if isHardware(p.ImportPath) {
			checked++
		}
	}
	if checked == 0 {
		t.Fatal("go list found no hardware package: the listing is broken")
	}
	for _, p := range pkgs {
		if p.ImportPath == module+"ipc" || strings.HasPrefix(p.ImportPath, module+"ipc/") {
			t.Errorf("a hardware package depends on the API's wire package %s", p.ImportPath)
		}
	}
}
