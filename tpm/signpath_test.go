package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"errors"
	"runtime"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/tpm/adminkey"
	"github.com/hwauthd/hwauthd/tpm/attest"
)

// sendBareSignLocked sends TPM2_Sign on the held signing session without
// asserting anything in it first: what a leftover PIN assertion would let
// through.
func sendBareSignLocked(tp *TPM, c *Card) error {
	key, err := tp.cardKeyLocked(c)
	if err != nil {
		return err
	}
	s, err := tp.signSessionLocked()
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte("no PIN"))
	_, err = tp.sendSignLocked(s, key, digest[:], sigScheme{alg: tpm2.TPMAlgECDSA, hash: tpm2.TPMAlgSHA256})
	return err
}

// TestSigningSessionHoldsNoPIN: the policy session kept between
// signatures carries no satisfied PIN assertion once a Sign or a PIN
// check has returned: a TPM2_Sign on it alone is refused by the TPM
// (policy reset after use, TPM2_PolicyRestart after a check, flushed
// after a failure).
func TestSigningSessionHoldsNoPIN(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	bare := func(after string) {
		t.Helper()
		if err := tp.lock(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		defer tp.unlock()
		err := sendBareSignLocked(tp, c)
		if !errors.Is(err, tpm2.TPMRCPolicyFail) {
			t.Fatalf("TPM2_Sign on the held session after %s: %v, want TPM_RC_POLICY_FAIL", after, err)
		}
		tp.dropSignSessionLocked()
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	bare("a signature")
	for range 2 { // a signature after a check uses the session the check reset
		if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); err != nil {
			t.Fatal(err)
		}
		signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); err != nil {
		t.Fatal(err)
	}
	bare("a PIN check")
	digest := sha256.Sum256([]byte("wrong PIN"))
	var inc *hwerr.PINIncorrect
	if _, err := tp.Sign(testCtx(t), c, []byte(wrongPIN), digest[:], crypto.SHA256); !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("Sign with a wrong PIN: %v, want 4 tries left", err)
	}
	bare("a wrong PIN")
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
		t.Fatalf("after a right PIN: %+v, %v", tr, err)
	}
}

// dropSign is a transport that loses every TPM2_Sign (the command does
// not reach the TPM), as a connection broken at that moment would.
type dropSign struct{ inner transport.TPM }

func (d dropSign) Send(cmd []byte) ([]byte, error) {
	if commandCode(cmd) == tpm2.TPMCCSign {
		return nil, errors.New("connection lost")
	}
	return d.inner.Send(cmd)
}

// TestUnsentSignLeavesNoAssertion: when the TPM2_Sign after a successful
// PolicySecret does not go out, the session holding that assertion is
// flushed, not kept for the next signature.
func TestUnsentSignLeavesNoAssertion(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	inner := tp.tr.inner
	tp.tr.inner = dropSign{inner}
	digest := sha256.Sum256([]byte("lost"))
	if _, err := tp.Sign(testCtx(t), c, []byte(testPIN), digest[:], crypto.SHA256); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Fatalf("Sign over a connection that loses it: %v, want ErrUnavailable", err)
	}
	tp.tr.inner = inner
	if tp.sign != nil {
		t.Fatal("the signing session with an unspent PIN assertion is still held")
	}
	if n := countLoaded(t, tp); n != 1 {
		t.Fatalf("%d objects or sessions loaded, want only the PIN session", n)
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
}

// TestCanceledDuringOperation: once the lock holder's context ends, the
// transport sends nothing more for it but flushes.
func TestCanceledDuringOperation(t *testing.T) {
	_, tp := newSim(t)
	ctx, cancel := context.WithCancel(context.Background())
	if err := tp.lock(ctx); err != nil {
		t.Fatal(err)
	}
	op := tp.tr.op
	cancel()
	for op.err() == nil { // context.AfterFunc runs in its own goroutine
		runtime.Gosched()
	}
	_, err := tpm2.GetRandom{BytesRequested: 8}.Execute(tp.tr)
	tp.unlock()
	if !errors.Is(err, hwerr.ErrCanceled) {
		t.Fatalf("command after the context ended: %v, want ErrCanceled", err)
	}
	if _, err := tp.Tries(testCtx(t), createCard(t, tp, AlgECCP256)); err != nil {
		t.Fatalf("the next operation: %v", err)
	}
}

// TestHandMarshalledCommands: the signing path's commands carry the
// parameters go-tpm would marshal, and its signature parser gives what
// encodeSignature gives for go-tpm's parse.
func TestHandMarshalledCommands(t *testing.T) {
	digest := sha256.Sum256([]byte("x"))
	for _, sc := range []sigScheme{
		{tpm2.TPMAlgECDSA, tpm2.TPMAlgSHA256}, {tpm2.TPMAlgRSASSA, tpm2.TPMAlgSHA384}, {tpm2.TPMAlgRSAPSS, tpm2.TPMAlgSHA512},
	} {
		want := slicesConcat(
			tpm2.Marshal(tpm2.TPM2BDigest{Buffer: digest[:]}),
			tpm2.Marshal(tpm2.TPMTSigScheme{Scheme: sc.alg, Details: tpm2.NewTPMUSigScheme(sc.alg, &tpm2.TPMSSchemeHash{HashAlg: sc.hash})}),
			tpm2.Marshal(tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull}),
		)
		var sent []byte
		tp := &TPM{tr: &retryTransport{inner: recorder{&sent}}}
		_, _ = tp.sendSignLocked(&signSession{handle: 0x03000000}, tpm2.NamedHandle{Handle: 0x80000001}, digest[:], sc)
		if !bytes.HasSuffix(sent, want) {
			t.Errorf("%v: TPM2_Sign parameters\n%x\nwant suffix\n%x", sc, sent, want)
		}
	}
	nonce := []byte("0123456789abcdef")
	want := slicesConcat(
		tpm2.Marshal(tpm2.TPM2BNonce{Buffer: nonce}), tpm2.Marshal(tpm2.TPM2BDigest{}), tpm2.Marshal(tpm2.TPM2BNonce{}), []byte{0, 0, 0, 0},
	)
	var sent []byte
	tp := &TPM{tr: &retryTransport{inner: recorder{&sent}}}
	_ = tp.sendPolicySecretLocked(&pinSession{handle: 0x02000000}, []byte("auth"), &NVIndex{Handle: 0x01480001, Name: []byte{0, 0xb, 1}}, 0x03000000, nonce)
	if !bytes.HasSuffix(sent, want) || be.Uint32(sent[10:]) != 0x01480001 || be.Uint32(sent[14:]) != 0x03000000 {
		t.Errorf("TPM2_PolicySecret\n%x\nwant handles and parameters\n%x", sent, want)
	}

	r := bytes.Repeat([]byte{0x80}, 32)
	s := append([]byte{0}, bytes.Repeat([]byte{0x7f}, 31)...)
	for _, sig := range []tpm2.TPMTSignature{
		{SigAlg: tpm2.TPMAlgECDSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash: tpm2.TPMAlgSHA256, SignatureR: tpm2.TPM2BECCParameter{Buffer: r}, SignatureS: tpm2.TPM2BECCParameter{Buffer: s}})},
		{SigAlg: tpm2.TPMAlgRSASSA, Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgRSASSA, &tpm2.TPMSSignatureRSA{
			Hash: tpm2.TPMAlgSHA256, Sig: tpm2.TPM2BPublicKeyRSA{Buffer: r}})},
	} {
		want, err := encodeSignature(&sig)
		if err != nil {
			t.Fatal(err)
		}
		got, err := parseSignature(tpm2.Marshal(sig), sigScheme{sig.SigAlg, tpm2.TPMAlgSHA256})
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%v: parseSignature = %x, %v; want %x", sig.SigAlg, got, err, want)
		}
		if _, err := parseSignature(tpm2.Marshal(sig), sigScheme{sig.SigAlg, tpm2.TPMAlgSHA384}); !errors.Is(err, hwerr.ErrProtocol) {
			t.Errorf("%v made with another hash than asked: %v", sig.SigAlg, err)
		}
	}
}

// recorder is a transport that keeps the command and answers
// TPM_RC_FAILURE.
type recorder struct{ sent *[]byte }

func (r recorder) Send(cmd []byte) ([]byte, error) {
	*r.sent = bytes.Clone(cmd)
	return []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 1, 1}, nil
}

func slicesConcat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// TestParseResponse: a well-formed response with one session splits into
// its parameters and authorization; errors are the TPM's code; anything
// malformed is hwerr.ErrProtocol.
func TestParseResponse(t *testing.T) {
	ok := []byte{0x80, 0x02, 0, 0, 0, 25, 0, 0, 0, 0, 0, 0, 0, 2, 0xaa, 0xbb, 0, 2, 0x11, 0x22, 1, 0, 2, 0x33, 0x44}
	params, auth, err := parseResponse(ok)
	if err != nil || !bytes.Equal(params, []byte{0xaa, 0xbb}) || !bytes.Equal(auth.nonce, []byte{0x11, 0x22}) ||
		auth.attrs != 1 || !bytes.Equal(auth.hmac, []byte{0x33, 0x44}) {
		t.Fatalf("parseResponse = %x, %+v, %v", params, auth, err)
	}
	if _, _, err := parseResponse([]byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x09, 0x8e}); !errors.Is(err, tpm2.TPMRCAuthFail) {
		t.Fatalf("error response: %v", err)
	}
	for i, bad := range [][]byte{
		nil,
		bytes.Clone(ok[:24]),
		append(bytes.Clone(ok), 0),
		{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0, 0},
		{0x80, 0x02, 0, 0, 0, 14, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff},
	} {
		if len(bad) >= 6 && len(bad) != 25 {
			be.PutUint32(bad[2:], uint32(len(bad)))
		}
		if _, _, err := parseResponse(bad); !errors.Is(err, hwerr.ErrProtocol) {
			t.Errorf("malformed response %d (%x): %v", i, bad, err)
		}
	}
}

// TestEveryOperationAfterASignature: each operation that needs objects or
// sessions of its own works while the engine holds what it keeps after
// signatures (two cards' keys, the PIN session, the signing session),
// within swtpm's three object and three session slots, and the card signs
// after each.
func TestEveryOperationAfterASignature(t *testing.T) {
	sw := testenv.SWTPMWithEKCert(t)
	tp := openSim(t, sw, Policy{})
	admin, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	a, other := createCard(t, tp, AlgECCP256), createCard(t, tp, AlgECCP384)
	ctx := testCtx(t)
	pin := testPIN
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"create with attestation and admin key", func() error {
			b, _, err := tp.CreateCard(ctx, CreateOptions{PIN: []byte(testPIN), PUK: []byte(testPUK), Attest: true,
				Nonce: []byte("nonce"), AdminKey: &admin.PublicKey})
			if err == nil {
				signAndVerify(t, tp, b, testPIN, cardKey(t, b))
				a = b
			}
			return err
		}},
		{"CSR", func() error { _, err := tp.CSR(ctx, a, []byte(pin), pkix.Name{CommonName: "x"}); return err }},
		{"change PIN", func() error { pin = "22222222"; return tp.ChangePIN(ctx, a, []byte(testPIN), []byte(pin)) }},
		{"unblock with PUK", func() error { pin = "33333333"; return tp.UnblockPIN(ctx, a, []byte(testPUK), []byte(pin)) }},
		{"admin unblock", func() error {
			ch, err := tp.AdminChallenge(ctx, a)
			if err != nil {
				return err
			}
			signAndVerify(t, tp, a, pin, cardKey(t, a))
			rsp, err := adminkey.Sign(admin, ch)
			if err != nil {
				return err
			}
			pin = "44444444"
			return tp.AdminUnblock(ctx, a, rsp, []byte(pin))
		}},
		{"EK attestation", func() error {
			req, err := tp.AttestationRequest(ctx, a)
			if err != nil {
				return err
			}
			_, ch, secret, err := attest.VerifyRequest(req, parseCAs(t, sw.EKCA(t)))
			if err != nil {
				return err
			}
			signAndVerify(t, tp, a, pin, cardKey(t, a))
			answer, err := tp.ActivateAttestation(ctx, *ch)
			if err != nil {
				return err
			}
			return attest.CheckAnswer(secret, answer)
		}},
		{"tries", func() error { _, err := tp.Tries(ctx, a); return err }},
	} {
		signAndVerify(t, tp, other, testPIN, cardKey(t, other)) // two keys held
		signAndVerify(t, tp, a, pin, cardKey(t, a))
		if err := op.do(); err != nil {
			t.Fatalf("%s after a signature: %v", op.name, err)
		}
		signAndVerify(t, tp, a, pin, cardKey(t, a))
	}
	if err := tp.DestroyCard(ctx, a); err != nil {
		t.Fatalf("destroy after a signature: %v", err)
	}
}
