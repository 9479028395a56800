package tpm

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/tpm/attest"
)

// parseCAs parses PEM certificates.
func parseCAs(t *testing.T, pemBytes []byte) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, pemBytes = pem.Decode(pemBytes)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		t.Fatal("no CA certificates")
	}
	return out
}

// TestEKAttestation is the two-step exchange on swtpms manufactured with
// EK certificates by their own local CAs: a genuine request verifies and
// its challenge opens on its TPM to the right answer; a tampered request,
// the wrong EK CA, another TPM's keys and a replayed answer all fail.
func TestEKAttestation(t *testing.T) {
	swA, swB := testenv.SWTPMWithEKCert(t), testenv.SWTPMWithEKCert(t)
	a, b := openSim(t, swA, Policy{}), openSim(t, swB, Policy{})
	caA, caB := parseCAs(t, swA.EKCA(t)), parseCAs(t, swB.EKCA(t))
	card := createCard(t, a, AlgECCP256)
	req, err := a.AttestationRequest(testCtx(t), card)
	if err != nil {
		t.Fatalf("AttestationRequest: %v", err)
	}
	key, ch, secret, err := attest.VerifyRequest(req, caA)
	if err != nil {
		t.Fatalf("VerifyRequest: %v", err)
	}
	if !key.(interface{ Equal(crypto.PublicKey) bool }).Equal(cardKey(t, card)) {
		t.Fatal("the certified key is not the card's")
	}
	answer, err := a.ActivateAttestation(testCtx(t), *ch)
	if err != nil {
		t.Fatalf("ActivateAttestation: %v", err)
	}
	if err := attest.CheckAnswer(secret, answer); err != nil {
		t.Fatalf("CheckAnswer: %v", err)
	}
	// The card still signs after the exchange (the engine's key cache).
	signAndVerify(t, a, card, testPIN, cardKey(t, card))

	// A replayed answer: a second challenge for the same request has
	// another secret.
	_, ch2, secret2, err := attest.VerifyRequest(req, caA)
	if err != nil {
		t.Fatal(err)
	}
	if err := attest.CheckAnswer(secret2, answer); !errors.Is(err, attest.ErrNotProven) {
		t.Fatalf("replayed answer: %v", err)
	}
	// Another TPM cannot open a challenge made for this one.
	if _, err := b.ActivateAttestation(testCtx(t), *ch2); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Fatalf("challenge opened on another TPM: %v", err)
	}
	// The wrong EK CA.
	if _, _, _, err := attest.VerifyRequest(req, caB); !errors.Is(err, attest.ErrNotProven) {
		t.Fatalf("verified with another TPM maker's CA: %v", err)
	}
	// Tampered requests and mixed TPMs.
	cardB := createCard(t, b, AlgECCP256)
	reqB, err := b.AttestationRequest(testCtx(t), cardB)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(p []byte, i int) []byte {
		p = bytes.Clone(p)
		p[i%len(p)] ^= 1
		return p
	}
	// with is req with one change.
	with := func(change func(r *device.AttestationRequest)) device.AttestationRequest {
		r := *req
		change(&r)
		return r
	}
	for name, bad := range map[string]device.AttestationRequest{
		"flipped certify info":      with(func(r *device.AttestationRequest) { r.CertifyInfo = flip(req.CertifyInfo, 40) }),
		"flipped signature":         with(func(r *device.AttestationRequest) { r.Signature = flip(req.Signature, 20) }),
		"flipped EK certificate":    with(func(r *device.AttestationRequest) { r.EKCertificate = flip(req.EKCertificate, 300) }),
		"other TPM's EK, this cert": with(func(r *device.AttestationRequest) { r.EKPublic = reqB.EKPublic }),
		"other TPM's card key":      with(func(r *device.AttestationRequest) { r.KeyPublic = reqB.KeyPublic }),
		"other TPM's AK and statement": with(func(r *device.AttestationRequest) {
			r.AKPublic, r.KeyPublic, r.CertifyInfo, r.Signature = reqB.AKPublic, reqB.KeyPublic, reqB.CertifyInfo, reqB.Signature
		}),
	} {
		_, chBad, _, err := attest.VerifyRequest(&bad, caA)
		if name == "other TPM's AK and statement" && err == nil {
			// Consistent on paper (B's AK certified B's key, A's EK is
			// genuine), but the challenge binds B's AK to A's EK: neither
			// TPM opens it.
			if _, err := b.ActivateAttestation(testCtx(t), *chBad); !errors.Is(err, hwerr.ErrInvalidInput) {
				t.Errorf("%s: B opened a challenge for A's EK: %v", name, err)
			}
			if _, err := a.ActivateAttestation(testCtx(t), *chBad); !errors.Is(err, hwerr.ErrInvalidInput) {
				t.Errorf("%s: A opened a challenge for B's AK: %v", name, err)
			}
			continue
		}
		if !errors.Is(err, attest.ErrNotProven) {
			t.Errorf("%s: %v, want ErrNotProven", name, err)
		}
	}
	// A TPM without EK certificate says so.
	_, plain := newSim(t)
	if _, err := plain.AttestationRequest(testCtx(t), createCard(t, plain, AlgECCP256)); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Fatalf("AttestationRequest without EK certificate: %v", err)
	}
}
