package pivcard_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/pcsctest/vicc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// openscModule is OpenSC's PKCS#11 module, an independent PIV client.
const openscModule = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// waitTimeout bounds every wait for pcscd to notice a card.
const waitTimeout = 10 * time.Second

var (
	rsaOnce sync.Once
	rsaKey  *rsa.PrivateKey
)

func sharedRSAKey() *rsa.PrivateKey {
	rsaOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	return rsaKey
}

// fullCard returns a card with P-256 in 9A, P-384 in 9C and RSA-2048 in 9D.
func fullCard(t *testing.T) *pivcard.Card {
	t.Helper()
	card, err := pivcard.New(pivcard.Options{Label: "Integration Card", Slots: []pivcard.SlotSpec{
		{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256},
		{Slot: piv.SlotSignature, Alg: piv.KeyAlgP384},
		{Slot: piv.SlotKeyManagement, Alg: piv.KeyAlgRSA2048, Key: sharedRSAKey()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return card
}

// insert connects card to vpcd reader 0 of the private pcscd, waits until
// PC/SC sees it, and removes it when the test ends.
func insert(t *testing.T, p *pcscenv.PCSC, card *pivcard.Card) *vicc.Slot {
	t.Helper()
	slot := vicc.NewSlot(card, func(ctx context.Context) (net.Conn, error) { return p.DialReader(ctx, 0) })
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := slot.Insert(ctx); err != nil {
		t.Fatalf("insert: %v", err)
	}
	t.Cleanup(func() {
		// Wait until pcscd has seen the removal, so the next test's card is
		// not mistaken for this one.
		slot.Remove()
		waitPresent(t, p, false)
	})
	waitPresent(t, p, true)
	return slot
}

// waitPresent waits, with a deadline, until PC/SC can (or can no longer)
// connect to the card in reader 0. PC/SC offers no event for this without a
// monitor, so it polls the condition, bounded by the deadline.
func waitPresent(t *testing.T, p *pcscenv.PCSC, want bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := pcsc.Connect(context.Background(), p.ReaderName(0))
		if err == nil {
			c.Close()
		}
		if (err == nil) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("card present = %v not reached: %v", want, err)
		}
		<-tick.C
	}
}

func connect(t *testing.T, p *pcscenv.PCSC) *pcsc.Card {
	t.Helper()
	c, err := pcsc.Connect(context.Background(), p.ReaderName(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestClientThroughPCSCD runs the PIV client over the real pcscd and vpcd:
// certificates need 61xx chaining (vpcd has no extended APDUs), and the
// RSA command needs command chaining.
func TestClientThroughPCSCD(t *testing.T) {
	p := pcscenv.PCSCD(t)
	card := fullCard(t)
	insert(t, p, card)
	conn := connect(t, p)
	ctx := context.Background()
	if !bytes.Equal(conn.ATR(), card.ATR()) {
		t.Errorf("ATR through pcscd = %X, want %X", conn.ATR(), card.ATR())
	}
	c := piv.NewClient(conn)
	if _, err := c.Select(ctx); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("through pcscd"))
	pss := &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}
	for _, tt := range []struct {
		slot piv.Slot
		opts crypto.SignerOpts
	}{{piv.SlotAuthentication, crypto.SHA256}, {piv.SlotSignature, crypto.SHA256}, {piv.SlotKeyManagement, crypto.SHA256}, {piv.SlotKeyManagement, pss}} {
		cert, err := c.Certificate(ctx, tt.slot)
		if err != nil {
			t.Fatalf("certificate %s: %v", tt.slot, err)
		}
		if !bytes.Equal(cert.Raw, card.Certificate(tt.slot)) {
			t.Errorf("certificate %s differs", tt.slot)
		}
		if err := c.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
			t.Fatal(err)
		}
		sig, err := c.PrivateKey(tt.slot, cert.PublicKey).SignContext(ctx, rand.Reader, digest[:], tt.opts)
		if err != nil {
			t.Fatalf("sign %s %T: %v", tt.slot, tt.opts, err)
		}
		if err := verify(cert, tt.opts, digest[:], sig); err != nil {
			t.Errorf("%s %T: %v", tt.slot, tt.opts, err)
		}
	}
	var pinErr *hwerr.PINIncorrect
	if err := c.VerifyPIN(ctx, []byte("000000")); !errors.As(err, &pinErr) || pinErr.RetriesLeft != hwerr.TriesLeft(2) {
		t.Errorf("wrong PIN through pcscd: %v", err)
	}
}

func verify(cert *x509.Certificate, opts crypto.SignerOpts, digest, sig []byte) error {
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); ok {
		if pss, ok := opts.(*rsa.PSSOptions); ok {
			return rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, pss)
		}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest, sig) {
		return errors.New("ECDSA signature does not verify")
	}
	return nil
}

// TestInsertRemove checks that pcscd sees the card come and go with
// vicc.Slot, and that opensc-tool -l reports it.
func TestInsertRemove(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "opensc-tool")
	slot := insert(t, p, fullCard(t))
	out := run(t, p, "opensc-tool", "-l")
	if !readerLine(out, p.ReaderName(0), "Yes") {
		t.Errorf("opensc-tool -l with the card inserted:\n%s", out)
	}
	if err := slot.Remove(); err != nil {
		t.Fatal(err)
	}
	waitPresent(t, p, false)
	out = run(t, p, "opensc-tool", "-l")
	if !readerLine(out, p.ReaderName(0), "No") {
		t.Errorf("opensc-tool -l after removal:\n%s", out)
	}
}

// readerLine reports whether opensc-tool -l lists the reader with the
// "Card present?" column set to present.
func readerLine(out, reader, present string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if strings.Contains(line, reader) && len(f) > 2 && f[1] == present {
			return true
		}
	}
	return false
}

func run(t *testing.T, p *pcscenv.PCSC, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := p.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestOpenSC has OpenSC, an independent PIV client, read the card and sign
// with its 9A key; the signature is checked in Go against the certificate.
func TestOpenSC(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "opensc-tool", "pkcs11-tool")
	testenv.RequireFiles(t, openscModule)
	card := fullCard(t)
	insert(t, p, card)
	if out := run(t, p, "opensc-tool", "-r", p.ReaderName(0), "-a"); !strings.Contains(strings.ToUpper(strings.ReplaceAll(out, ":", "")), strings.ToUpper(hex.EncodeToString(card.ATR()))) {
		t.Errorf("opensc-tool -a:\n%s\nwant ATR %X", out, card.ATR())
	}
	if out := run(t, p, "pkcs11-tool", "--module", openscModule, "-L"); !strings.Contains(out, "token label") || !strings.Contains(out, "piv_II") || !strings.Contains(out, "Integration Card") {
		t.Errorf("pkcs11-tool -L:\n%s", out)
	}
	out := run(t, p, "pkcs11-tool", "--module", openscModule, "-O")
	for _, want := range []string{"Certificate for PIV Authentication", "CN=Integration Card", "EC_POINT 256 bits", "EC_POINT 384 bits", "RSA 2048 bits"} {
		if !strings.Contains(out, want) {
			t.Errorf("pkcs11-tool -O lacks %q:\n%s", want, out)
		}
	}
	digest := sha256.Sum256([]byte("signed through OpenSC"))
	if !openscSignVerifies(t, p, card, piv.SlotAuthentication, digest[:]) {
		t.Error("OpenSC's signature does not verify against the 9A certificate")
	}
}

// TestNSSAndPKCS15 has two more independent clients use the card: NSS
// (Firefox's crypto library, through OpenSC's module) lists its certificate
// and signs with its 9A key after the PIN, and OpenSC's pkcs15-tool lists
// and reads its certificate and key.
func TestNSSAndPKCS15(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireFiles(t, openscModule)
	card := fullCard(t)
	insert(t, p, card)
	cert, err := x509.ParseCertificate(card.Certificate(piv.SlotAuthentication))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	tok := pcscenv.PIVToken{Reader: p.ReaderName(0), Label: "Integration Card", PIN: pivcard.DefaultPIN, Cert: cert}
	pcscenv.CheckNSS(ctx, t, p.Command, openscModule, tok)
	pcscenv.CheckPKCS15(ctx, t, p.Command, tok)
}

// openscSignVerifies has pkcs11-tool sign digest with the slot's key
// (CKM_ECDSA, raw r‖s) and reports whether the signature verifies against
// the slot's certificate.
func openscSignVerifies(t *testing.T, p *pcscenv.PCSC, card *pivcard.Card, slot piv.Slot, digest []byte) bool {
	t.Helper()
	ids := map[piv.Slot]string{piv.SlotAuthentication: "01", piv.SlotSignature: "02", piv.SlotKeyManagement: "03"}
	dir := t.TempDir()
	in, sigPath := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, digest, 0o600); err != nil {
		t.Fatal(err)
	}
	run(t, p, "pkcs11-tool", "--module", openscModule, "--login", "--pin", pivcard.DefaultPIN,
		"--sign", "--mechanism", "ECDSA", "--id", ids[slot], "--input-file", in, "--output-file", sigPath)
	raw, err := os.ReadFile(sigPath)
	cert, _ := x509.ParseCertificate(card.Certificate(slot))
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	size := (pub.Curve.Params().BitSize + 7) / 8
	if err != nil || len(raw) != 2*size {
		t.Fatalf("raw ECDSA signature of %d bytes, %v; want %d", len(raw), err, 2*size)
	}
	r, s := new(big.Int).SetBytes(raw[:size]), new(big.Int).SetBytes(raw[size:])
	return ecdsa.Verify(pub, digest, r, s)
}

// TestYubicoPIVTool has yubico-piv-tool, a second independent client, show
// the CHUID and the 9A certificate.
func TestYubicoPIVTool(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "yubico-piv-tool")
	card := fullCard(t)
	insert(t, p, card)
	out := run(t, p, "yubico-piv-tool", "-r", "Test PCD", "-a", "status")
	guid := card.GUID()
	if !strings.Contains(strings.ToLower(out), hex.EncodeToString(guid[:])) {
		t.Errorf("status does not show the CHUID GUID %x:\n%s", guid, out)
	}
	if !strings.Contains(out, "Slot 9a") || !strings.Contains(out, "Integration Card") {
		t.Errorf("status does not show the 9A certificate:\n%s", out)
	}
}

// TestYubicoPIVToolProvisioning has yubico-piv-tool sign with the P-384 key
// in 9C (it sends a SHA-256 digest, shorter than the curve), then provision
// slot 9D as an administrator would: generate a key under the default
// management key, self-sign and import a certificate, and change the
// management key, after which the default one is refused.
func TestYubicoPIVToolProvisioning(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "yubico-piv-tool")
	card := fullCard(t)
	insert(t, p, card)
	ykpiv := func(args ...string) string {
		return run(t, p, "yubico-piv-tool", append([]string{"-r", "Test PCD"}, args...)...)
	}
	dir := t.TempDir()
	cert9c := filepath.Join(dir, "9c.pem")
	if err := os.WriteFile(cert9c, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: card.Certificate(piv.SlotSignature)}), 0o600); err != nil {
		t.Fatal(err)
	}
	ykpiv("-a", "verify-pin", "-P", pivcard.DefaultPIN, "-a", "test-signature", "-s", "9c", "-i", cert9c)

	pub, certPath := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "cert.pem")
	ykpiv("-a", "generate", "-s", "9d", "-A", "ECCP384", "-o", pub)
	// yubico-piv-tool 2.2's selfsign-certificate fails with OpenSSL 3 before
	// it talks to the card (Yubico/yubico-piv-tool#388): an issuer key here
	// certifies the generated key instead, as IT's CA would.
	if err := os.WriteFile(certPath, issue(t, pub, "Provisioned by yubico-piv-tool"), 0o600); err != nil {
		t.Fatal(err)
	}
	ykpiv("-a", "import-certificate", "-s", "9d", "-i", certPath)
	cert, err := x509.ParseCertificate(card.Certificate(piv.SlotKeyManagement))
	if err != nil || cert.Subject.CommonName != "Provisioned by yubico-piv-tool" {
		t.Fatalf("9D certificate after import: %v %v", cert, err)
	}
	if k, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve.Params().BitSize != 384 {
		t.Fatalf("9D certificate key %T, want the generated P-384 key", cert.PublicKey)
	}
	ykpiv("-a", "verify-pin", "-P", pivcard.DefaultPIN, "-a", "test-signature", "-s", "9d", "-i", certPath)

	newKey := strings.Repeat("0f1e2d3c4b5a6978", 3)
	ykpiv("-a", "set-mgm-key", "-n", newKey)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := p.Command(ctx, "yubico-piv-tool", "-r", "Test PCD", "-a", "generate", "-s", "9d", "-A", "ECCP256").CombinedOutput(); err == nil {
		t.Errorf("generate with the old default management key succeeded:\n%s", out)
	}
	ykpiv("-k"+newKey, "-a", "generate", "-s", "9d", "-A", "ECCP256", "-o", pub)
}

// issue returns a PEM certificate for the public key in the PEM file pubPath,
// signed by a fresh issuer key.
func issue(t *testing.T, pubPath, cn string) []byte {
	t.Helper()
	raw, err := os.ReadFile(pubPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(raw)
	if block == nil {
		t.Fatalf("%s holds no PEM:\n%s", pubPath, raw)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, Issuer: pkix.Name{CommonName: "Test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{Subject: pkix.Name{CommonName: "Test CA"}}, pub, issuer)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// TestOpenSCShortECDSAInput has OpenSC sign a SHA-256 digest with the P-384
// key in 9C, as TLS 1.2 client authentication and p11test's
// ec_sign_size_test do.
func TestOpenSCShortECDSAInput(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "pkcs11-tool")
	testenv.RequireFiles(t, openscModule)
	card := fullCard(t)
	insert(t, p, card)
	digest := sha256.Sum256([]byte("short input through OpenSC"))
	if !openscSignVerifies(t, p, card, piv.SlotSignature, digest[:]) {
		t.Error("OpenSC's P-384 signature over a SHA-256 digest does not verify")
	}
}

// TestGnuTLSAndOpenSSLSignWithP384 has GnuTLS's p11tool and OpenSSL's
// PKCS#11 engine (both through OpenSC) sign with a P-384 key: both hash
// with SHA-256 or hand the card a digest shorter than the curve.
func TestGnuTLSAndOpenSSLSignWithP384(t *testing.T) {
	p := pcscenv.PCSCD(t)
	testenv.RequireBinaries(t, "p11tool", "openssl")
	testenv.RequireFiles(t, openscModule, "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so")
	card, err := pivcard.New(pivcard.Options{Label: "P-384 Card", Slots: []pivcard.SlotSpec{{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP384}}})
	if err != nil {
		t.Fatal(err)
	}
	insert(t, p, card)
	out := run(t, p, "p11tool", "--provider", openscModule, "--login", "--set-pin", pivcard.DefaultPIN,
		"--test-sign", "pkcs11:id=%01;type=private")
	if !strings.Contains(out, "Verifying against public key in the token... ok") {
		t.Errorf("p11tool --test-sign:\n%s", out)
	}

	dir := t.TempDir()
	digest := sha256.Sum256([]byte("signed through the OpenSSL PKCS#11 engine"))
	in, sigPath := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	openssl := p.Command(ctx, "openssl", "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-sign",
		"-inkey", "pkcs11:id=%01;type=private;pin-value="+pivcard.DefaultPIN, "-in", in, "-out", sigPath)
	openssl.Env = append(openssl.Env, testenv.OpenSSLPKCS11Env(t, openscModule))
	if out, err := openssl.CombinedOutput(); err != nil {
		t.Fatalf("openssl pkeyutl: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(sigPath)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(card.Certificate(piv.SlotAuthentication))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("OpenSSL's P-384 signature over a SHA-256 digest does not verify")
	}
}
