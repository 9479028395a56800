package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pkcs11"
)

// built holds the programs the tests build once per test binary.
var built = struct {
	sync.Mutex
	dir   string
	paths map[string]string
}{paths: map[string]string{}}

// buildCmd builds ../cmd/NAME once per test binary and returns its path.
func buildCmd(t testing.TB, name string) string {
	t.Helper()
	return buildProgram(t, "cmd/"+name)
}

// buildProgram builds the program in directory pkg of the module (such as
// "pcsc/pcsctest/pivcard") once per test binary and returns its path.
func buildProgram(t testing.TB, pkg string) string {
	t.Helper()
	built.Lock()
	defer built.Unlock()
	if p, ok := built.paths[pkg]; ok {
		return p
	}
	if built.dir == "" {
		dir, err := os.MkdirTemp("", "hwauthd-e2e-bin")
		if err != nil {
			t.Fatal(err)
		}
		testenv.AtExit(func() { os.RemoveAll(dir) })
		built.dir = dir
	}
	p := filepath.Join(built.dir, filepath.Base(pkg))
	if out, err := exec.Command("go", "build", "-o", p, "../"+pkg).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	built.paths[pkg] = p
	return p
}

// withPKCS11 turns the PKCS#11 backend on with OpenSC's module.
func withPKCS11(t *testing.T, includePIV bool) func(*config.Config) {
	testenv.RequireFiles(t, pkcs11.OpenSCModule)
	helper := buildCmd(t, pkcs11.HelperName)
	return func(c *config.Config) {
		c.PKCS11.Enabled = true
		c.PKCS11.Modules = []string{pkcs11.OpenSCModule}
		c.PKCS11.Helper = helper
		c.PKCS11.IncludePIV = includePIV
	}
}

// TestPIVCardShownOnceWithOpenSC: a card that both the native PIV path and
// OpenSC's module reach appears once, as PIV; with include_piv it also
// appears through PKCS#11 with the same certificate, and signs there too.
func TestPIVCardShownOnceWithOpenSC(t *testing.T) {
	h := start(t, withPKCS11(t, true))
	c := h.insert(0, pivcard.Options{Label: "Twice"})
	// OpenSC may list the card before the PIV backend has read it, so the
	// PKCS#11 view may already be there when insert returns.
	p11 := h.waitPresent("the card through PKCS#11", func(id string) bool { return strings.HasPrefix(id, "p11-") })
	au, err := h.c.Authenticator(ctxT(t), p11)
	if err != nil {
		t.Fatal(err)
	}
	if au.Backend != ipc.BackendPKCS11 || au.Reader != h.pcsc.ReaderName(0) {
		t.Fatalf("PKCS#11 view: %+v", au)
	}
	native, err := h.c.Authenticator(ctxT(t), c.id)
	if err != nil {
		t.Fatal(err)
	}
	var same bool
	for _, k := range au.Keys {
		same = same || k.Certificate == native.Keys[0].Certificate
	}
	if !same {
		t.Fatalf("the two views show different certificates")
	}
	h.stop()

	h2 := start(t, withPKCS11(t, false))
	h2.remove(c) // the card was left in reader 0 by the first daemon's test
	c2 := h2.insert(0, pivcard.Options{Label: "Once"})
	if err := signAndVerify(t, h2, c2, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	list, err := h2.c.Authenticators(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	// A PKCS#11 scan that began before the PIV backend claimed the reader
	// may list the card for a moment; the next scan must withdraw it.
	for _, a := range list {
		if a.Reader == h2.pcsc.ReaderName(0) && a.ID != c2.id {
			h2.waitFor("the PKCS#11 view of the PIV card withdrawn", func(e ipc.Event) bool {
				return e.Type == ipc.EventCardRemoved && e.Authenticator == a.ID
			})
		}
	}
	// The helper may still be loading OpenSC's module.
	h2.waitBackendUp("pkcs11")
}
