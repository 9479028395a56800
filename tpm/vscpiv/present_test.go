package vscpiv_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/vreader"
	"github.com/hwauthd/hwauthd/tpm/vscbackend"
	"github.com/hwauthd/hwauthd/tpm/vscpiv"
)

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
	p := testenv.PCSCD(t)
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
	tok := testenv.PIVToken{Reader: reader, Label: "Virtual PIV user", PIN: pin, Cert: cert}
	testenv.CheckNSS(ctx, t, p.Command, module, tok)
	testenv.CheckPKCS15(ctx, t, p.Command, tok)

	before, _ := dev.PINState(ctx)
	if out, err := sign(wrong); err == nil {
		t.Fatalf("pkcs11-tool with a wrong PIN succeeded:\n%s", out)
	}
	after, _ := dev.PINState(ctx)
	if *after.RetriesLeft != *before.RetriesLeft-1 {
		t.Errorf("tries %d → %d: the wrong PIN through PC/SC did not count on the card", *before.RetriesLeft, *after.RetriesLeft)
	}
	var found bool
	for _, e := range h.published() {
		if e.Type == ipc.EventPINAttempt && e.Authenticator == dev.Info().ID && e.Reader == reader && strings.Contains(e.Reason, "wrong PIN") && e.User == "alice" {
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

// TestPresentationOff: with no readers configured the cards stay API-only
// and the status says so.
func TestPresentationOff(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	_, _, _, run := runVirtualCard(t, func(b device.Backend) device.Backend {
		return vscpiv.Present(b, vscpiv.PresentConfig{Readers: 0, Socket: readerSocket}, log)
	})
	if st := run.Status(); !strings.Contains(st.Detail, "API-only") {
		t.Errorf("status detail %q", st.Detail)
	}
}

// TestPresentationFull: with one reader, a second virtual card stays
// API-only and the status counts both.
func TestPresentationFull(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	var inner *vscbackend.Backend
	_, _, h, run := runVirtualCard(t, func(b device.Backend) device.Backend {
		inner = b.(*vscbackend.Backend)
		return vscpiv.Present(b, vscpiv.PresentConfig{Readers: 1, Socket: readerSocket}, log)
	})
	ctx := context.Background()
	second, err := inner.Create(ctx, ipc.VirtualSmartcardCreateRequest{Label: "Second", PIN: ipc.Secret(pin), PUK: ipc.Secret(puk)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := run.(device.Enumerator); !ok {
		t.Error("the Presenter hides the TPM backend's first enumeration from the daemon's readiness")
	} else {
		select {
		case <-run.(device.Enumerator).Enumerated():
		default:
			t.Error("Enumerated not closed although the backend presented its cards")
		}
	}
	if h.device(second.ID) == nil {
		t.Fatal("second card not attached")
	}
	if st := run.Status(); !strings.Contains(st.Detail, "1 virtual cards presented to PC/SC applications as PIV cards (at most 1); 1 API-only") {
		t.Errorf("status detail %q", st.Detail)
	}
}
