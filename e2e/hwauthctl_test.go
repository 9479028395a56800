package e2e

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// TestHwauthctlAgainstTheDaemon runs the hwauthctl binary against the real
// daemon: its output, exit codes and PIN input, as a person or a script sees
// them.
func TestHwauthctlAgainstTheDaemon(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{Label: "CLI card"})
	bin := buildCmd(t, "hwauthctl")
	ctl := func(stdin string, args ...string) (string, int) {
		cmd := exec.Command(bin, append([]string{"--socket", h.socket}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return string(out), exit.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}

	out, code := ctl("", "list")
	if code != 0 || !strings.Contains(out, c.id) || !strings.Contains(out, "CLI card") || !strings.Contains(out, "3 tries left") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	out, code = ctl("", "--json", "list")
	var list ipc.AuthenticatorsResponse
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list.Authenticators) != 1 {
		t.Fatalf("list --json: %d\n%s", code, out)
	}
	// A wrong PIN: exit code 3, the tries left, and the PIN never echoed.
	out, code = ctl("654321\n", "--pin-stdin", "pin", "verify", c.id)
	if code != 3 || !strings.Contains(out, "2 tries left") || strings.Contains(out, "654321") {
		t.Fatalf("wrong PIN: %d\n%s", code, out)
	}
	out, code = ctl(pivcard.DefaultPIN+"\n", "--pin-stdin", "pin", "verify", c.id)
	if code != 0 || strings.Contains(out, pivcard.DefaultPIN) {
		t.Fatalf("right PIN: %d\n%s", code, out)
	}
	// Sign a file; the signature verifies with the card's certificate.
	doc, sigFile := filepath.Join(t.TempDir(), "doc"), filepath.Join(t.TempDir(), "sig")
	if err := os.WriteFile(doc, []byte("a document"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, code = ctl(pivcard.DefaultPIN+"\n", "--pin-stdin", "sign", c.id, "--key", "9a", "--file", doc, "--out", sigFile); code != 0 {
		t.Fatalf("sign: %d\n%s", code, out)
	}
	sig, _ := os.ReadFile(sigFile)
	cert, _ := x509.ParseCertificate(c.Certificate(piv.SlotAuthentication))
	d := sha256.Sum256([]byte("a document"))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), d[:], sig) {
		t.Fatal("hwauthctl's signature does not verify with the card's certificate")
	}
	// Registration, and a removal that asks first: without a terminal and
	// without --yes it refuses and changes nothing.
	if out, code = ctl(pivcard.DefaultPIN+"\n", "--pin-stdin", "register", "--user", alice, c.id); code != 0 {
		t.Fatalf("register: %d\n%s", code, out)
	}
	regs, err := h.c.Registrations(ctxT(t), alice)
	if err != nil || len(regs.Registrations) != 1 {
		t.Fatalf("registrations: %+v %v", regs, err)
	}
	rid := regs.Registrations[0].ID
	if out, code = ctl("", "unregister", "--user", alice, rid); code != 2 || !strings.Contains(out, "--yes") {
		t.Fatalf("unregister without confirmation: %d\n%s", code, out)
	}
	if out, code = ctl("", "unregister", "--user", alice, "--yes", rid); code != 0 {
		t.Fatalf("unregister --yes: %d\n%s", code, out)
	}
	// Unknown authenticator: exit code 5; no daemon: exit code 7.
	if _, code = ctl("", "show", "piv-nothing"); code != 5 {
		t.Fatalf("show unknown: exit %d", code)
	}
	h.stop()
	if out, code = ctl("", "status"); code != 7 || !strings.Contains(out, "hwauthd") {
		t.Fatalf("status without a daemon: %d\n%s", code, out)
	}
}
