package vscpiv_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/store/boltstore"
	"github.com/hwauthd/hwauthd/tpm"
	"github.com/hwauthd/hwauthd/tpm/vscbackend"
	"github.com/hwauthd/hwauthd/tpm/vscpiv"
)

// The card's PIN and PUK meet the TPM backend's default policy and fit a PIV
// PIN (8 characters).
const (
	pin   = "12345678"
	puk   = "87654321"
	wrong = "00000000"
)

// host collects the devices the TPM backend attaches.
type host struct {
	mu       sync.Mutex
	devices  map[string]device.Device
	events   []device.Event
	attached chan struct{}
}

func (h *host) Attach(d device.Device) {
	h.mu.Lock()
	h.devices[d.Info().ID] = d
	h.mu.Unlock()
	select {
	case h.attached <- struct{}{}:
	default:
	}
}
func (h *host) Detach(string)           {}
func (h *host) SetReader(device.Reader) {}
func (h *host) RemoveReader(string)     {}
func (h *host) Notify(e device.Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, e)
}
func (h *host) published() []device.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.events)
}
func (h *host) device(id string) device.Device {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.devices[id]
}

// virtualCard runs the TPM backend on a private swtpm, creates a P-256
// virtual card, imports a certificate for its key and returns the card.
func virtualCard(t *testing.T) (device.Device, *x509.Certificate) {
	t.Helper()
	dev, cert, _, _ := runVirtualCard(t, nil)
	return dev, cert
}

// runVirtualCard is virtualCard with the backend wrapped by wrap (when not
// nil), returning also the host and the running backend.
func runVirtualCard(t *testing.T, wrap func(device.Backend) device.Backend) (device.Device, *x509.Certificate, *host, device.Backend) {
	t.Helper()
	sw := testenv.SWTPM(t)
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := vscbackend.New(tpm.Config{Simulator: sw.Addr()}, st, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	h := &host{devices: map[string]device.Device{}, attached: make(chan struct{}, 1)}
	var run device.Backend = b
	if wrap != nil {
		run = wrap(b)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = run.Run(ctx, h) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(30 * time.Second)
	for run.Status().State != device.StateUp {
		if time.Now().After(deadline) {
			t.Fatalf("TPM backend: %+v", b.Status())
		}
		time.Sleep(10 * time.Millisecond) // the backend has no readiness signal
	}
	vsc, err := b.Create(ctx, device.CreateVirtualCard{Label: "Virtual PIV", PIN: []byte(pin), PUK: []byte(puk), Algorithm: device.ECCP256})
	if err != nil {
		t.Fatal(err)
	}
	pub := vsc.Key.Public
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Virtual PIV user"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{Subject: pkix.Name{CommonName: "Test CA"}}, pub, caKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ImportCertificate(ctx, vsc.ID, cert); err != nil {
		t.Fatal(err)
	}
	dev := h.device(vsc.ID)
	if dev == nil {
		t.Fatalf("card %s not attached", vsc.ID)
	}
	return dev, cert, h, run
}

func raw(t *testing.T, c *pivcard.Card, hexAPDU string) uint16 {
	t.Helper()
	b, _ := hex.DecodeString(hexAPDU)
	r, err := apdu.ParseResponse(c.Transmit(b))
	if err != nil {
		t.Fatal(err)
	}
	return r.SW
}

// TestVirtualCardAsPIV drives the PIV applet over a TPM virtual card: PIN
// attempts count on the card's own counter and are reported, the TPM key
// signs after the PIN, and provisioning through the card is refused.
func TestVirtualCardAsPIV(t *testing.T) {
	dev, cert := virtualCard(t)
	var attempts []vscpiv.Attempt
	card := pivcard.NewApplet(vscpiv.New(dev, func(a vscpiv.Attempt) { attempts = append(attempts, a) }))
	ctx := context.Background()
	cl := piv.NewClient(pivcard.Transmitter(card))
	if _, err := cl.Select(ctx); err != nil {
		t.Fatal(err)
	}
	chuid, err := cl.ReadCHUID(ctx)
	if err != nil || !strings.HasSuffix(dev.Info().ID, hex.EncodeToString(chuid.GUID[:])) {
		t.Fatalf("CHUID GUID %x, %v; want the card id %s", chuid.GUID, err, dev.Info().ID)
	}
	got, err := cl.Certificate(ctx, piv.SlotAuthentication)
	if err != nil || !got.Equal(cert) {
		t.Fatalf("9A certificate: %v", err)
	}

	before, _ := dev.PINState(ctx)
	left, ok := before.RetriesLeft.Left()
	if !ok {
		t.Fatalf("the card does not tell its tries: %+v", before)
	}
	var pinErr *hwerr.PINIncorrect
	if err := cl.VerifyPIN(ctx, []byte(wrong)); !errors.As(err, &pinErr) || pinErr.RetriesLeft != hwerr.TriesLeft(left-1) {
		t.Fatalf("wrong PIN through PIV: %v; want %d tries left", err, left-1)
	}
	if after, _ := dev.PINState(ctx); after.RetriesLeft != pinErr.RetriesLeft {
		t.Errorf("the card's counter says %v, PIV said %v: not one counter", after.RetriesLeft, pinErr.RetriesLeft)
	}
	if len(attempts) != 1 || attempts[0].What != "PIN" || !errors.As(attempts[0].Err, &pinErr) {
		t.Errorf("attempts reported: %+v", attempts)
	}
	if n, err := cl.PINRetries(ctx); err != nil || n != pinErr.RetriesLeft {
		t.Errorf("empty VERIFY: %v, %v", n, err)
	}

	digest := sha256.Sum256([]byte("signed in the TPM through PIV"))
	key := cl.PrivateKey(piv.SlotAuthentication, got.PublicKey)
	if _, err := key.SignContext(ctx, rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, hwerr.ErrPINRequired) {
		t.Fatalf("sign before VERIFY: %v, want PIN required", err)
	}
	if err := cl.VerifyPIN(ctx, []byte(pin)); err != nil {
		t.Fatal(err)
	}
	sig, err := key.SignContext(ctx, rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("the TPM's signature does not verify with the certificate's key")
	}
	if st, _ := dev.PINState(ctx); st.RetriesLeft != before.RetriesLeft {
		t.Errorf("tries after a good PIN: %v, want %v restored", st.RetriesLeft, before.RetriesLeft)
	}

	// The PIN changed through the API while this card session is verified:
	// the next signature costs one TPM try, is refused and ends the session,
	// so no further try is spent.
	if err := cl.VerifyPIN(ctx, []byte(pin)); err != nil {
		t.Fatal(err)
	}
	const newPIN = "87651234"
	if err := dev.ChangePIN(ctx, []byte(pin), []byte(newPIN)); err != nil {
		t.Fatal(err)
	}
	attempts = nil
	for range 2 {
		if _, err := key.SignContext(ctx, rand.Reader, digest[:], crypto.SHA256); !errors.Is(err, hwerr.ErrPINRequired) {
			t.Fatalf("sign after the PIN changed elsewhere: %v, want PIN required", err)
		}
	}
	if st, _ := dev.PINState(ctx); st.RetriesLeft != hwerr.TriesLeft(left-1) {
		t.Errorf("tries %v after two refused signatures, want %d (one spent)", st.RetriesLeft, left-1)
	}
	if len(attempts) != 1 || !errors.As(attempts[0].Err, &pinErr) {
		t.Errorf("attempts reported: %+v, want the one try the TPM counted", attempts)
	}

	for name, a := range map[string]string{
		"GENERATE":           "0047009A05AC03800111",
		"PUT DATA":           "00DB3FFF0A5C035FC10553037001FF",
		"management key":     "0087039B047C028000",
		"SET MANAGEMENT KEY": "00FFFFFF1B039B18" + strings.Repeat("01", 24),
		"change PUK":         "0024008110" + hex.EncodeToString([]byte(puk+puk)),
		"sign with empty 9C": "0087119C267C2482008120" + strings.Repeat("00", 32),
	} {
		want := apdu.SWFuncNotSupported
		if name == "sign with empty 9C" {
			want = apdu.SWIncorrectP1P2
		}
		if sw := raw(t, card, a); sw != want {
			t.Errorf("%s: %04X, want %04X", name, sw, want)
		}
	}
}
