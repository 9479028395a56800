//go:build cgo

// The tests in this file use a private pcscd (package pcscenv), which needs
// cgo for libpcsclite; without cgo the package's other tests still build and
// run.

package vscpiv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc/pcsctest/vicc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vreader"
	"github.com/hwauthd/hwauthd/tpm/vscpiv"
)

// readerSocket is where the private pcscd's hwauthd readers look for cards.
var readerSocket string

func TestMain(m *testing.M) {
	var err error
	if readerSocket, err = pcscenv.WithReaderDriver(2, vreader.ReaderConf); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	testenv.Main(m)
}

// TestPresentedThroughOwnReader runs the TPM backend wrapped by the
// Presenter beside a private pcscd that loads hwauthd's reader driver: the
// virtual card appears in hwauthd's first reader, OpenSC, ssh-keygen, GnuTLS,
// OpenSSL and NSS sign with its TPM key after the card's PIN, pkcs15-tool and
// yubico-piv-tool read it, and a wrong PIN through PC/SC counts on the
// card's TPM counter and is published as a pin-attempt event.
func TestPresentedThroughOwnReader(t *testing.T) {
	module := openscModule
	testenv.RequireBinaries(t, "pkcs11-tool", "ssh-keygen", "p11tool", "openssl", "yubico-piv-tool")
	testenv.RequireFiles(t, module, "/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so")
	p := pcscenv.PCSCD(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dev, cert, h, run := runVirtualCard(t, func(b device.Backend) device.Backend {
		return vscpiv.Present(b, vscpiv.PresentConfig{Readers: 2, Socket: readerSocket,
			Owners: func(context.Context, string) ([]string, error) { return []string{"alice"}, nil }}, log)
	})
	reader := vreader.FriendlyName + " 00 00"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitToken(ctx, t, p, reader, "Virtual PIV")
	if st := run.Status(); !strings.Contains(st.Detail, "1 virtual cards presented") {
		t.Errorf("status detail %q", st.Detail)
	}

	dir := t.TempDir()
	digest := sha256.Sum256([]byte("through hwauthd's reader, signed in the TPM"))
	in, sigPath := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		t.Fatal(err)
	}
	sign := func(pin string) ([]byte, error) {
		return p.Command(ctx, "pkcs11-tool", "--module", module, "--slot-description", reader, "--login", "--pin", pin, "--sign", "--mechanism", "ECDSA",
			"--id", "01", "--input-file", in, "--output-file", sigPath, "--signature-format", "openssl").CombinedOutput()
	}
	if out, err := sign(pin); err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(sigPath)
	if err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("OpenSC's signature through hwauthd's reader does not verify (%v)", err)
	}

	// ssh-keygen -D lists the TPM key as an ssh public key.
	if out, err := p.Command(ctx, "ssh-keygen", "-D", module).CombinedOutput(); err != nil || !strings.Contains(string(out), sshKey(t, cert.PublicKey.(*ecdsa.PublicKey))) {
		t.Errorf("ssh-keygen -D: %v\n%s\nwant %s", err, out, sshKey(t, cert.PublicKey.(*ecdsa.PublicKey)))
	}

	// GnuTLS's p11tool and OpenSSL's PKCS#11 engine sign with it too, and
	// yubico-piv-tool reads it as a PIV card.
	// OpenSC names the token after the certificate's CN.
	key := "pkcs11:token=Virtual%20PIV%20user;id=%01;type=private"
	if out, err := p.Command(ctx, "p11tool", "--provider", module, "--login", "--set-pin", pin, "--test-sign", key).CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Verifying against public key in the token... ok") {
		t.Errorf("p11tool --test-sign: %v\n%s", err, out)
	}
	openssl := p.Command(ctx, "openssl", "pkeyutl", "-engine", "pkcs11", "-keyform", "engine", "-sign",
		"-inkey", key+";pin-value="+pin, "-in", in, "-out", sigPath)
	openssl.Env = append(openssl.Env, testenv.OpenSSLPKCS11Env(t, module))
	if out, err := openssl.CombinedOutput(); err != nil {
		t.Errorf("openssl pkeyutl: %v\n%s", err, out)
	} else if sig, err := os.ReadFile(sigPath); err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Errorf("OpenSSL's signature with the TPM key does not verify (%v)", err)
	}
	if out, err := p.Command(ctx, "yubico-piv-tool", "-r", vreader.FriendlyName, "-a", "status").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), "Slot 9a") || !strings.Contains(string(out), "Virtual PIV user") {
		t.Errorf("yubico-piv-tool -a status: %v\n%s", err, out)
	}

	// NSS (Firefox's crypto library) lists the imported certificate and
	// signs with the TPM key; OpenSC's pkcs15-tool reads both.
	tok := pcscenv.PIVToken{Reader: reader, Label: "Virtual PIV user", PIN: pin, Cert: cert}
	pcscenv.CheckNSS(ctx, t, p.Command, module, tok)
	pcscenv.CheckPKCS15(ctx, t, p.Command, tok)

	before, _ := dev.PINState(ctx)
	if out, err := sign(wrong); err == nil {
		t.Fatalf("pkcs11-tool with a wrong PIN succeeded:\n%s", out)
	}
	after, _ := dev.PINState(ctx)
	if n, ok := before.RetriesLeft.Left(); !ok || after.RetriesLeft != hwerr.TriesLeft(n-1) {
		t.Errorf("tries %v → %v: the wrong PIN through PC/SC did not count on the card", before.RetriesLeft, after.RetriesLeft)
	}
	var found bool
	for _, e := range h.published() {
		if e.Type == device.EventPINAttempt && e.Authenticator == dev.Info().ID && e.Reader == reader && strings.Contains(e.Reason, "wrong PIN") && e.User == "alice" {
			found = true
		}
		if strings.Contains(e.Reason, wrong) || strings.Contains(e.Reason, pin) {
			t.Errorf("an event carries the PIN: %+v", e)
		}
	}
	if !found {
		t.Errorf("no pin-attempt event for the wrong PIN: %+v", h.published())
	}
}

// sshKey is a P-256 key as ssh writes it (RFC 5656 §3.1).
func sshKey(t *testing.T, k *ecdsa.PublicKey) string {
	t.Helper()
	point, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var blob []byte
	for _, f := range [][]byte{[]byte("ecdsa-sha2-nistp256"), []byte("nistp256"), point} {
		blob = binary.BigEndian.AppendUint32(blob, uint32(len(f)))
		blob = append(blob, f...)
	}
	return "ecdsa-sha2-nistp256 " + base64.StdEncoding.EncodeToString(blob)
}

// TestVirtualCardThroughOpenSC inserts the TPM-backed applet into a private
// pcscd's vpcd reader: OpenSC's pkcs11-tool finds it as a PIV card and signs
// with the TPM key after the card's PIN.
func TestVirtualCardThroughOpenSC(t *testing.T) {
	testenv.RequireBinaries(t, "pkcs11-tool")
	testenv.RequireFiles(t, openscModule)
	p := pcscenv.PCSCD(t)
	dev, cert := virtualCard(t)
	card := pivcard.NewApplet(vscpiv.New(dev, nil))
	slot := vicc.NewSlot(card, func(ctx context.Context) (net.Conn, error) { return p.DialReader(ctx, 0) })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := slot.Insert(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slot.Remove() })
	dir := t.TempDir()
	digest := sha256.Sum256([]byte("OpenSC with a TPM key"))
	in, sigPath := filepath.Join(dir, "digest"), filepath.Join(dir, "sig")
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		t.Fatal(err)
	}
	waitToken(ctx, t, p, p.ReaderName(0), "Virtual PIV")
	out, err := p.Command(ctx, "pkcs11-tool", "--module", openscModule, "--slot-description", p.ReaderName(0), "--login", "--pin", pin, "--sign", "--mechanism", "ECDSA",
		"--id", "01", "--input-file", in, "--output-file", sigPath, "--signature-format", "openssl").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(sigPath)
	if err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Fatalf("OpenSC's signature with the TPM key does not verify (%v)", err)
	}
}

// openscModule is OpenSC's PKCS#11 module, an independent PIV client.
const openscModule = "/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so"

// waitToken waits, with a deadline, until OpenSC shows a token labelled
// label in reader: pcscd polls for cards and offers no event to wait on.
func waitToken(ctx context.Context, t *testing.T, p *pcscenv.PCSC, reader, label string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, err := p.Command(ctx, "pkcs11-tool", "--module", openscModule, "-T").CombinedOutput()
		if err == nil && slotHasToken(string(out), reader, label) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no token %q in %s: %v\n%s", label, reader, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// slotHasToken reports whether pkcs11-tool -T's listing shows the token
// label in the slot of reader.
func slotHasToken(listing, reader, label string) bool {
	for _, slot := range strings.Split(listing, "Slot ")[1:] {
		first, rest, _ := strings.Cut(slot, "\n")
		if strings.Contains(first, reader) && strings.Contains(rest, "token label") && strings.Contains(rest, label) {
			return true
		}
	}
	return false
}
