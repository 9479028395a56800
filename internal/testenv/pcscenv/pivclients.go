package pcscenv

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// Command makes a command that reaches a private pcscd, such as
// PCSC.Command.
type Command func(ctx context.Context, name string, args ...string) *exec.Cmd

// PIVToken names a PIV card as its independent clients see it.
type PIVToken struct {
	Reader string // pcscd's reader name
	Label  string // OpenSC's token label (the 9A certificate's CN)
	PIN    string
	Cert   *x509.Certificate // the 9A certificate as the card holds it
}

// authKeyID is the PKCS#11 and PKCS#15 id OpenSC gives the 9A key.
const authKeyID = "01"

// CheckNSS has NSS, Firefox's crypto library (libnss3-tools), use the card
// through OpenSC's PKCS#11 module in a fresh database: certutil -L -h all
// lists the 9A certificate, and certutil -R has NSS log in with the PIN and
// sign a certificate request with the 9A key (NSS holds no private key:
// the token signs). The request must carry the certificate's public key and
// its signature must verify with it.
func CheckNSS(ctx context.Context, t testing.TB, run Command, module string, tok PIVToken) {
	t.Helper()
	testenv.RequireBinaries(t, "certutil", "modutil")
	dir := t.TempDir()
	db := "sql:" + dir
	pinFile, csrPath := filepath.Join(dir, "pin"), filepath.Join(dir, "request.der")
	if err := os.WriteFile(pinFile, []byte(tok.PIN+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tool := func(name string, args ...string) string {
		out, err := run(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	tool("certutil", "-N", "-d", db, "--empty-password")
	tool("modutil", "-dbdir", db, "-add", "opensc", "-libfile", module, "-force")
	list := tool("certutil", "-L", "-d", db, "-h", "all", "-f", pinFile)
	if !strings.Contains(list, tok.Label+":") {
		t.Errorf("certutil -L -h all does not list token %q's certificates:\n%s", tok.Label, list)
	}
	// NSS names a certificate after the CKA_LABEL OpenSC gives it. Read
	// each of the token's back by its nickname: certutil -r writes every
	// certificate that shares the named one's subject, newest first (a PIV
	// card's certificates often name the same person, and which one comes
	// first then depends on the second each was issued in), so look for
	// the card's among all of them.
	var found bool
	var reads strings.Builder
	for _, line := range strings.Split(list, "\n") {
		name, _, ok := strings.Cut(strings.TrimSpace(line), "  ")
		if !ok || !strings.HasPrefix(name, tok.Label+":") {
			continue
		}
		var stderr bytes.Buffer
		cmd := run(ctx, "certutil", "-L", "-d", db, "-h", tok.Label, "-n", name, "-r", "-f", pinFile)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		ders := splitDER(out)
		for _, der := range ders {
			if err == nil && bytes.Equal(der, tok.Cert.Raw) {
				found = true
			}
		}
		fmt.Fprintf(&reads, "%s: %d certificates in %d bytes, %v %s\n", name, len(ders), len(out), err, bytes.TrimSpace(stderr.Bytes()))
	}
	if !found {
		t.Fatalf("NSS reads no certificate of token %q equal to the card's:\n%s\nreading each back:\n%s", tok.Label, list, reads.String())
	}
	tool("certutil", "-R", "-d", db, "-h", tok.Label, "-k", authKeyID, "-s", "CN=signed by NSS", "-f", pinFile, "-o", csrPath)
	der, err := os.ReadFile(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatalf("NSS's certificate request: %v", err)
	}
	if !bytes.Equal(csr.RawSubjectPublicKeyInfo, tok.Cert.RawSubjectPublicKeyInfo) {
		t.Errorf("NSS signed with a key other than the one of token %q's certificate", tok.Label)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Errorf("NSS's signature with the card's key does not verify: %v", err)
	}
}

// CheckPKCS15 has OpenSC's pkcs15-tool read the card in tok.Reader:
// --list-certificates and --list-keys name the 9A certificate and key, and --read-certificate and --read-public-key return the
// card's certificate and its public key.
func CheckPKCS15(ctx context.Context, t testing.TB, run Command, tok PIVToken) {
	t.Helper()
	testenv.RequireBinaries(t, "pkcs15-tool")
	tool := func(args ...string) string {
		args = append([]string{"--reader", tok.Reader}, args...)
		out, err := run(ctx, "pkcs15-tool", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("pkcs15-tool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	id := "ID             : " + authKeyID
	if out := tool("--list-certificates"); !strings.Contains(out, "X.509 Certificate [Certificate for PIV Authentication]") || !strings.Contains(out, id) {
		t.Errorf("pkcs15-tool --list-certificates lacks the 9A certificate:\n%s", out)
	}
	if out := tool("--list-keys"); !strings.Contains(out, "Private EC Key [PIV AUTH key]") || !strings.Contains(out, id) || !strings.Contains(out, "Key ref        : 154 (0x9A)") {
		t.Errorf("pkcs15-tool --list-keys lacks the 9A key:\n%s", out)
	}
	if b, _ := pem.Decode([]byte(tool("--read-certificate", authKeyID))); b == nil || !bytes.Equal(b.Bytes, tok.Cert.Raw) {
		t.Errorf("pkcs15-tool --read-certificate %s is not the card's certificate", authKeyID)
	}
	if b, _ := pem.Decode([]byte(tool("--read-public-key", authKeyID))); b == nil || !bytes.Equal(b.Bytes, tok.Cert.RawSubjectPublicKeyInfo) {
		t.Errorf("pkcs15-tool --read-public-key %s is not the certificate's key", authKeyID)
	}
}

// splitDER splits back-to-back DER objects, as certutil -L -r writes them,
// and stops at the first bytes that are not one.
func splitDER(b []byte) [][]byte {
	var ders [][]byte
	for len(b) > 0 {
		var v asn1.RawValue
		rest, err := asn1.Unmarshal(b, &v)
		if err != nil {
			break
		}
		ders = append(ders, v.FullBytes)
		b = rest
	}
	return ders
}
