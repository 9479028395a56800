package pkcs11

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/internal/testenv/pcscenv"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// pivSetup puts an emulated PIV card in reader 0 of the private pcscd and
// runs a backend with OpenSC's module. pivServes says whether the native
// PIV path claims the reader (SkipReader).
func pivSetup(t *testing.T) (*pivcard.Card, *Backend, *fakeHost, *atomic.Bool, string) {
	testenv.RequireFiles(t, OpenSCModule)
	pcsc := pcscenv.PCSCD(t)
	card, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pcsc.DialReader(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	go serveCard(conn, card)
	t.Cleanup(func() { conn.Close() })
	reader := pcsc.ReaderName(0)
	pivServes := new(atomic.Bool)
	b := NewBackend(Config{Modules: []string{OpenSCModule}, HelperPath: buildHelper(t), Env: pcsc.Env(),
		SkipReader: func(r string) bool { return pivServes.Load() && r == reader }}, nil)
	host := newFakeHost()
	runBackend(t, b, host)
	// The daemon rescans on PC/SC events; here, rescan until OpenSC sees the
	// card (each scan wakes waitFor).
	waitFor(t, b, "the emulated PIV card", func() bool {
		if host.count() == 1 {
			return true
		}
		b.Rescan()
		return false
	})
	return card, b, host, pivServes, reader
}

func onlyDevice(t *testing.T, h *fakeHost) *Device {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, d := range h.devices {
		return d.(*Device)
	}
	t.Fatal("no device")
	return nil
}

// TestOpenSCEmulatedPIV reads the emulated PIV card through OpenSC's
// module: the same certificate as the card holds in slot 9A, a signature
// that verifies with it, the reader name for dedup, and the card hidden once
// the native PIV path claims its reader.
func TestOpenSCEmulatedPIV(t *testing.T) {
	card, b, host, pivServes, reader := pivSetup(t)
	d := onlyDevice(t, host)
	info := d.Info()
	if info.Reader != reader {
		t.Errorf("reader = %q, want %q", info.Reader, reader)
	}
	var cert *x509.Certificate
	for _, k := range info.Keys {
		if k.ID == "01" { // OpenSC's CKA_ID for slot 9A
			cert = k.Certificate
		}
	}
	if cert == nil || !bytes.Equal(cert.Raw, card.Certificate(piv.SlotAuthentication)) {
		t.Fatalf("key 01 certificate differs from the card's 9A certificate (keys %+v)", info.Keys)
	}
	digest := sha256.Sum256([]byte("piv through pkcs11"))
	sig, err := d.Sign(context.Background(), device.SignRequest{Key: "01", Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: []byte(pivcard.DefaultPIN)})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("signature does not verify with the certificate")
	}

	pivServes.Store(true)
	b.Rescan()
	waitFor(t, b, "the card hidden behind the native PIV path", func() bool { return host.count() == 0 })
}

// TestOpenSCLockedPIN spends the emulated card's PIN tries through OpenSC:
// the tries left come from the token flags, the last wrong PIN blocks it,
// and then the PIN is reported blocked.
func TestOpenSCLockedPIN(t *testing.T) {
	_, _, host, _, _ := pivSetup(t)
	d := onlyDevice(t, host)
	ctx := context.Background()
	var retries []hwerr.Tries
	for range pivcard.DefaultTries {
		var pi *hwerr.PINIncorrect
		err := d.VerifyPIN(ctx, []byte("000000"))
		switch {
		case errors.As(err, &pi):
			retries = append(retries, pi.RetriesLeft)
		case errors.Is(err, hwerr.ErrPINBlocked):
			retries = append(retries, hwerr.TriesLeft(0))
		default:
			t.Fatalf("wrong PIN: %v", err)
		}
	}
	if retries[len(retries)-2] != hwerr.TriesLeft(1) || retries[len(retries)-1] != hwerr.TriesLeft(0) {
		t.Errorf("tries left reported %v, want ..., 1, 0", retries)
	}
	if err := d.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Errorf("right PIN on a blocked card: %v, want ErrPINBlocked", err)
	}
	st, err := d.PINState(ctx)
	if err != nil || !st.Blocked {
		t.Errorf("PINState = %+v, %v; want blocked", st, err)
	}
	if !d.Info().PIN.Blocked {
		t.Error("Info does not show the PIN blocked")
	}
}
