package e2e

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pkcs11"
)

// TestOpenSCVerifiesDaemonSignatures: an independent PIV client, OpenSC's
// pkcs11-tool, checks a signature hwauthd made on the same card (the PIV
// authentication key 9A is OpenSC's key id 01), and refuses a tampered one.
func TestOpenSCVerifiesDaemonSignatures(t *testing.T) {
	testenv.RequireBinaries(t, "pkcs11-tool")
	testenv.RequireFiles(t, pkcs11.OpenSCModule)
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	digest := sha256.Sum256([]byte("signed through hwauthd"))
	sig, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: ipc.Secret(pivcard.DefaultPIN)})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in, good, bad := filepath.Join(dir, "digest"), filepath.Join(dir, "sig"), filepath.Join(dir, "tampered")
	tampered := append([]byte(nil), sig...)
	tampered[len(tampered)-1] ^= 1
	for p, b := range map[string][]byte{in: digest[:], good: sig, bad: tampered} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	verify := func(sigFile string) (string, error) {
		out, err := h.pcsc.Command(ctxT(t), "pkcs11-tool", "--module", pkcs11.OpenSCModule, "--verify", "--id", "01",
			"-m", "ECDSA", "--input-file", in, "--signature-file", sigFile, "--signature-format", "openssl").CombinedOutput()
		return string(out), err
	}
	if out, err := verify(good); err != nil || !strings.Contains(out, "Signature is valid") {
		t.Fatalf("OpenSC on hwauthd's signature: %v\n%s", err, out)
	}
	// pkcs11-tool exits 0 either way; its words say which.
	if out, _ := verify(bad); !strings.Contains(out, "Invalid signature") {
		t.Fatalf("OpenSC did not refuse a tampered signature:\n%s", out)
	}
}
