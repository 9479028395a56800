package daemon_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"sync"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
)

// fakeVirtualCards is a TPM backend in memory: cards by id, each with a
// P-256 key, and what the last unblock was given.
type fakeVirtualCards struct {
	mu        sync.Mutex
	cards     map[string]device.VirtualCard
	next      int
	unblocked [][]byte // responses, then the new PIN
}

func newFakeVirtualCards() *fakeVirtualCards {
	return &fakeVirtualCards{cards: map[string]device.VirtualCard{}}
}

func (f *fakeVirtualCards) card(id string) (device.VirtualCard, error) {
	c, ok := f.cards[id]
	if !ok {
		return c, fmt.Errorf("virtual card %s: %w", id, hwerr.ErrNotFound)
	}
	return c, nil
}

func (f *fakeVirtualCards) Create(_ context.Context, req device.CreateVirtualCard) (device.VirtualCard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return device.VirtualCard{}, err
	}
	f.next++
	c := device.VirtualCard{ID: fmt.Sprintf("vsc-%d", f.next), Label: req.Label, PINRetriesLeft: hwerr.TriesLeft(3),
		Key: device.Key{ID: "9a", Algorithm: device.ECCP256, Public: key.Public()}}
	f.cards[c.ID] = c
	return c, nil
}

func (f *fakeVirtualCards) List(context.Context) ([]device.VirtualCard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []device.VirtualCard
	for _, c := range f.cards {
		out = append(out, c)
	}
	return out, nil
}

func (f *fakeVirtualCards) Get(_ context.Context, id string) (device.VirtualCard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.card(id)
}

func (f *fakeVirtualCards) Delete(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.card(id); err != nil {
		return err
	}
	delete(f.cards, id)
	return nil
}

func (f *fakeVirtualCards) CSR(_ context.Context, id string, req device.CSRRequest) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.card(id); err != nil {
		return nil, err
	}
	return []byte("CSR for " + req.Subject), nil
}

func (f *fakeVirtualCards) ImportCertificate(_ context.Context, id string, cert *x509.Certificate) (device.VirtualCard, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.card(id)
	if err != nil {
		return c, err
	}
	if pub, ok := c.Key.Public.(*ecdsa.PublicKey); !ok || !pub.Equal(cert.PublicKey) {
		return c, fmt.Errorf("the certificate is for another key: %w", hwerr.ErrInvalidInput)
	}
	c.Key.Certificate = cert
	f.cards[id] = c
	return c, nil
}

func (f *fakeVirtualCards) AttestationRequest(_ context.Context, id string) (device.AttestationRequest, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.card(id); err != nil {
		return device.AttestationRequest{}, err
	}
	return device.AttestationRequest{KeyPublic: []byte(id)}, nil
}

func (f *fakeVirtualCards) ActivateAttestation(_ context.Context, id string, ch device.AttestationChallenge) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.card(id); err != nil {
		return nil, err
	}
	return append(append([]byte{}, ch.CredentialBlob...), ch.EncryptedSecret...), nil
}

func (f *fakeVirtualCards) AdminChallenge(_ context.Context, id string) (device.AdminChallenge, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.card(id); err != nil {
		return device.AdminChallenge{}, err
	}
	return device.AdminChallenge{Challenges: [2][]byte{[]byte("n1"), []byte("n2")}, Expires: time.Now().Add(time.Minute)}, nil
}

func (f *fakeVirtualCards) AdminUnblock(_ context.Context, id string, responses [2][]byte, newPIN []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.card(id)
	if err != nil {
		return err
	}
	f.unblocked = append(append([][]byte{}, responses[:]...), append([]byte{}, newPIN...))
	c.PINRetriesLeft = hwerr.TriesLeft(3)
	f.cards[id] = c
	return nil
}

// certificateFor is a certificate (PEM) for pub, signed by a throwaway CA
// key.
func certificateFor(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "work"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	return certutil.EncodePEM(certutil.PEMCertificate, der)
}

// TestVirtualCardRoutes: IT creates, lists, reads, certifies, attests,
// unblocks and deletes a TPM virtual smart card through the API; bad
// requests are refused with bad_request before the TPM is asked, an unknown
// card is not_found, and with the TPM backend off every route answers
// backend_unavailable.
func TestVirtualCardRoutes(t *testing.T) {
	vsc := newFakeVirtualCards()
	h := daemontest.NewWith(t, daemontest.Fakes{VirtualCards: vsc})
	root, ctx := h.Client("root"), context.Background()
	pin := func() ipc.Secret { return ipc.Secret(daemontest.PIN) }

	for _, tc := range []struct {
		name string
		req  ipc.VirtualSmartcardCreateRequest
	}{
		{"no label", ipc.VirtualSmartcardCreateRequest{PIN: pin()}},
		{"NUL in label", ipc.VirtualSmartcardCreateRequest{Label: "a\x00b", PIN: pin()}},
		{"unknown algorithm", ipc.VirtualSmartcardCreateRequest{Label: "work", Algorithm: "dsa-1024", PIN: pin()}},
		{"long nonce", ipc.VirtualSmartcardCreateRequest{Label: "work", Nonce: make([]byte, 65), PIN: pin()}},
		{"no PIN", ipc.VirtualSmartcardCreateRequest{Label: "work"}},
	} {
		if _, err := root.CreateVirtualSmartcard(ctx, tc.req); !isCode(err, ipc.CodeBadRequest) {
			t.Errorf("create with %s: %v, want bad_request", tc.name, err)
		}
	}
	if cards, err := root.VirtualSmartcards(ctx); err != nil || len(cards) != 0 {
		t.Fatalf("refused creates reached the TPM: %+v %v", cards, err)
	}

	card, err := root.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{Label: "work", Algorithm: string(device.ECCP256), PIN: pin()})
	if err != nil || card.Label != "work" || card.ID == "" {
		t.Fatalf("create: %+v %v", card, err)
	}
	if cards, err := root.VirtualSmartcards(ctx); err != nil || len(cards) != 1 || cards[0].ID != card.ID {
		t.Fatalf("list: %+v %v", cards, err)
	}
	if got, err := root.VirtualSmartcard(ctx, card.ID); err != nil || got.Label != "work" {
		t.Fatalf("get: %+v %v", got, err)
	}
	if _, err := root.VirtualSmartcard(ctx, "vsc-nope"); !isCode(err, ipc.CodeNotFound) {
		t.Fatalf("get an unknown card: %v", err)
	}

	if _, err := root.VirtualSmartcardCSR(ctx, card.ID, ipc.CSRRequest{}); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("CSR without subject: %v", err)
	}
	if csr, err := root.VirtualSmartcardCSR(ctx, card.ID, ipc.CSRRequest{Subject: "CN=Alice"}); err != nil || csr != certutil.EncodePEM(certutil.PEMCSR, []byte("CSR for CN=Alice")) {
		t.Errorf("CSR: %q %v", csr, err)
	}
	if _, err := root.ImportVirtualSmartcardCertificate(ctx, card.ID, ""); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("import of no certificate: %v", err)
	}
	if _, err := root.ImportVirtualSmartcardCertificate(ctx, card.ID, "PEM"); !isCode(err, ipc.CodeCertificateInvalid) {
		t.Errorf("import of a certificate that does not parse: %v", err)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if _, err := root.ImportVirtualSmartcardCertificate(ctx, card.ID, certificateFor(t, other.Public())); !isCode(err, ipc.CodeCertificateInvalid) {
		t.Errorf("import of a certificate for another key: %v", err)
	}
	if _, err := root.ImportVirtualSmartcardCertificate(ctx, "vsc-nope", "PEM"); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("import to an unknown card: %v", err)
	}
	vsc.mu.Lock()
	certPEM := certificateFor(t, vsc.cards[card.ID].Key.Public)
	vsc.mu.Unlock()
	if got, err := root.ImportVirtualSmartcardCertificate(ctx, card.ID, certPEM); err != nil || got.Certificate != certPEM {
		t.Errorf("import: %+v %v", got, err)
	}
	if got, err := root.VirtualSmartcard(ctx, card.ID); err != nil || got.Certificate != certPEM || got.PublicKey == "" || got.Algorithm != "ecc-p256" {
		t.Errorf("the imported certificate is not kept: %+v %v", got, err)
	}

	if req, err := root.VirtualSmartcardAttestation(ctx, card.ID); err != nil || string(req.KeyPublic) != card.ID {
		t.Errorf("attestation request: %+v %v", req, err)
	}
	if _, err := root.ActivateVirtualSmartcardAttestation(ctx, card.ID, ipc.VSCAttestationChallenge{CredentialBlob: []byte("c")}); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("activate without encrypted_secret: %v", err)
	}
	if ans, err := root.ActivateVirtualSmartcardAttestation(ctx, card.ID, ipc.VSCAttestationChallenge{CredentialBlob: []byte("c"), EncryptedSecret: []byte("s")}); err != nil || string(ans.Answer) != "cs" {
		t.Errorf("activate: %+v %v", ans, err)
	}

	ch, err := root.VirtualSmartcardAdminChallenge(ctx, card.ID)
	if err != nil || len(ch.Challenges) != 2 {
		t.Fatalf("admin challenge: %+v %v", ch, err)
	}
	responses := [][]byte{[]byte("r1"), []byte("r2")}
	if _, err := root.UnblockVirtualSmartcard(ctx, card.ID, ipc.VSCUnblockRequest{Responses: responses}); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("unblock without a new PIN: %v", err)
	}
	if vsc.unblocked != nil {
		t.Errorf("an unblock without a new PIN reached the TPM: %q", vsc.unblocked)
	}
	if got, err := root.UnblockVirtualSmartcard(ctx, card.ID, ipc.VSCUnblockRequest{Responses: responses, NewPIN: ipc.Secret("87654321")}); err != nil || got.ID != card.ID {
		t.Fatalf("unblock: %+v %v", got, err)
	}
	if len(vsc.unblocked) != 3 || !bytes.Equal(vsc.unblocked[1], []byte("r2")) || string(vsc.unblocked[2]) != "87654321" {
		t.Errorf("the TPM was given %q", vsc.unblocked)
	}

	if err := root.DeleteVirtualSmartcard(ctx, card.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := root.DeleteVirtualSmartcard(ctx, card.ID); !isCode(err, ipc.CodeNotFound) {
		t.Fatalf("delete again: %v", err)
	}
	if _, err := h.Client("alice").VirtualSmartcards(ctx); !isCode(err, ipc.CodeUnauthorized) {
		t.Errorf("a user lists virtual cards: %v", err)
	}

	noKinds := daemontest.NewWith(t, daemontest.Fakes{VirtualCards: newFakeVirtualCards()}, func(c *config.Config) {
		c.Policy.AllowedKinds = []string{ipc.KindSmartcard}
	})
	if _, err := noKinds.Client("root").CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{Label: "work", PIN: pin()}); !isCode(err, ipc.CodeKindNotAllowed) {
		t.Errorf("create when the policy forbids virtual cards: %v", err)
	}

	off := daemontest.New(t).Client("root")
	for name, call := range map[string]func() error{
		"create": func() error {
			_, err := off.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{Label: "work", PIN: pin()})
			return err
		},
		"list":   func() error { _, err := off.VirtualSmartcards(ctx); return err },
		"get":    func() error { _, err := off.VirtualSmartcard(ctx, "vsc-1"); return err },
		"delete": func() error { return off.DeleteVirtualSmartcard(ctx, "vsc-1") },
		"csr": func() error {
			_, err := off.VirtualSmartcardCSR(ctx, "vsc-1", ipc.CSRRequest{Subject: "CN=A"})
			return err
		},
		"certificate": func() error { _, err := off.ImportVirtualSmartcardCertificate(ctx, "vsc-1", "PEM"); return err },
		"attestation": func() error { _, err := off.VirtualSmartcardAttestation(ctx, "vsc-1"); return err },
		"unblock":     func() error { _, err := off.VirtualSmartcardAdminChallenge(ctx, "vsc-1"); return err },
	} {
		if err := call(); !isCode(err, ipc.CodeBackendUnavailable) {
			t.Errorf("%s with the TPM backend off: %v", name, err)
		}
	}
}
