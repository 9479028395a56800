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

var (
	helperOnce sync.Once
	helperPath string
	helperErr  error
)

// pkcs11Helper builds cmd/hwauthd-pkcs11 once per test binary.
func pkcs11Helper(t *testing.T) string {
	t.Helper()
	helperOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hwauthd-e2e-bin")
		if err != nil {
			helperErr = err
			return
		}
		testenv.AtExit(func() { os.RemoveAll(dir) })
		helperPath = filepath.Join(dir, pkcs11.HelperName)
		out, err := exec.Command("go", "build", "-o", helperPath, "../cmd/hwauthd-pkcs11").CombinedOutput()
		if err != nil {
			helperErr = err
			t.Logf("%s", out)
		}
	})
	if helperErr != nil {
		t.Fatalf("build the PKCS#11 helper: %v", helperErr)
	}
	return helperPath
}

// withPKCS11 turns the PKCS#11 backend on with OpenSC's module.
func withPKCS11(t *testing.T, includePIV bool) func(*config.Config) {
	testenv.RequireFiles(t, pkcs11.OpenSCModule)
	helper := pkcs11Helper(t)
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
	p11 := h.waitFor("the card through PKCS#11", func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && strings.HasPrefix(e.Authenticator, "p11-")
	})
	au, err := h.c.Authenticator(ctxT(t), p11.Authenticator)
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
	for _, a := range list {
		if a.Reader == h2.pcsc.ReaderName(0) && a.ID != c2.id {
			t.Errorf("the PIV card also appears as %s (%s)", a.ID, a.Backend)
		}
	}
	st, err := h2.c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if st.Backends["pkcs11"].State != ipc.BackendUp {
		t.Errorf("pkcs11 backend: %+v", st.Backends["pkcs11"])
	}
}
