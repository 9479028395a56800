package tpm

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/tpm/attest"
)

// TestAttestation: the TPM2_Certify statement verifies in Go, and any
// change to it, another key or another nonce makes it fail.
func TestAttestation(t *testing.T) {
	_, tp := newSim(t)
	nonce := []byte("fresh nonce from IT")
	c, att, err := tp.CreateCard(testCtx(t), CreateOptions{
		PIN: []byte(testPIN), PUK: []byte(testPUK), Attest: true, Nonce: nonce,
	})
	if err != nil {
		t.Fatalf("CreateCard with attestation: %v", err)
	}
	if att == nil {
		t.Fatal("no attestation returned")
	}
	key := cardKey(t, c)
	if err := attest.Verify(att, key, nonce); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	// The attestation key is the same for every card of the device.
	c2, att2, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN), PUK: []byte(testPUK), Attest: true, Algorithm: AlgECCP384})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(att.AKPublic, att2.AKPublic) {
		t.Fatal("attestation key differs between two cards of one TPM")
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i%len(b)] ^= 0x01
		return b
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tc := range map[string]struct {
		att   device.KeyAttestation
		key   crypto.PublicKey
		nonce []byte
	}{
		"flipped certify info": {device.KeyAttestation{AKPublic: att.AKPublic, KeyPublic: att.KeyPublic, CertifyInfo: flip(att.CertifyInfo, 40), Signature: att.Signature}, key, nonce},
		"flipped signature":    {device.KeyAttestation{AKPublic: att.AKPublic, KeyPublic: att.KeyPublic, CertifyInfo: att.CertifyInfo, Signature: flip(att.Signature, 20)}, key, nonce},
		"other card's public":  {device.KeyAttestation{AKPublic: att.AKPublic, KeyPublic: att2.KeyPublic, CertifyInfo: att.CertifyInfo, Signature: att.Signature}, cardKey(t, c2), nonce},
		"another key":          {*att, &otherKey.PublicKey, nonce},
		"wrong nonce":          {*att, key, []byte("stale nonce")},
		"signed by another AK": {device.KeyAttestation{AKPublic: att.AKPublic, KeyPublic: att2.KeyPublic, CertifyInfo: att2.CertifyInfo, Signature: att2.Signature}, cardKey(t, c2), nil},
	} {
		if name == "signed by another AK" {
			// att2 is genuine (no nonce): it must verify, and fail with
			// a foreign attestation key.
			if err := attest.Verify(&tc.att, tc.key, tc.nonce); err != nil {
				t.Fatalf("second card's attestation: %v", err)
			}
			forged, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			sum := sha256.Sum256(tc.att.CertifyInfo)
			tc.att.Signature, _ = ecdsa.SignASN1(rand.Reader, forged, sum[:])
		}
		if err := attest.Verify(&tc.att, tc.key, tc.nonce); !errors.Is(err, attest.ErrNotProven) {
			t.Errorf("%s: Verify = %v, want ErrNotProven", name, err)
		}
	}
	if _, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN), PUK: []byte(testPUK), Attest: true,
		Nonce: make([]byte, 65)}); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Fatalf("65-byte nonce: %v", err)
	}
}

// TestConcurrentSign: many goroutines sign through one *TPM; the engine
// serializes them (run with -race) within swtpm's three object slots.
func TestConcurrentSign(t *testing.T) {
	_, tp := newSim(t)
	cards := []*Card{createCard(t, tp, AlgECCP256), createCard(t, tp, AlgECCP384)}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Go(func() {
			c := cards[i%2]
			digest := sha256.Sum256(fmt.Appendf(nil, "message %d", i))
			sig, err := tp.Sign(context.Background(), c, []byte(testPIN), digest[:], crypto.SHA256)
			if err == nil {
				err = verify(cardKey(t, c), digest[:], sig, crypto.SHA256)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestSecretsZeroed: the engine zeroes every PIN, PUK and new-PIN slice it
// is given, on success and on failure.
func TestSecretsZeroed(t *testing.T) {
	_, tp := newSim(t)
	zero := func(name string, bufs ...[]byte) {
		t.Helper()
		for _, b := range bufs {
			if !bytes.Equal(b, make([]byte, len(b))) {
				t.Errorf("%s left a secret in the caller's buffer", name)
			}
		}
	}
	pin, puk := []byte(testPIN), []byte(testPUK)
	c, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: pin, PUK: puk})
	if err != nil {
		t.Fatal(err)
	}
	zero("CreateCard", pin, puk)
	short := []byte("123")
	_, _, _ = tp.CreateCard(testCtx(t), CreateOptions{PIN: short, PUK: []byte(testPUK)})
	zero("CreateCard (refused)", short)
	pin = []byte(testPIN)
	if err := tp.VerifyPIN(testCtx(t), c, pin); err != nil {
		t.Fatal(err)
	}
	zero("VerifyPIN", pin)
	wrong := []byte(wrongPIN)
	_ = tp.VerifyPIN(testCtx(t), c, wrong)
	zero("VerifyPIN (wrong)", wrong)
	pin = []byte(testPIN)
	if _, err := tp.Sign(testCtx(t), c, pin, make([]byte, 32), crypto.SHA256); err != nil {
		t.Fatal(err)
	}
	zero("Sign", pin)
	old, newPIN := []byte(testPIN), []byte("24680246")
	if err := tp.ChangePIN(testCtx(t), c, old, newPIN); err != nil {
		t.Fatal(err)
	}
	zero("ChangePIN", old, newPIN)
	puk, newPIN = []byte(testPUK), []byte(testPIN)
	if err := tp.UnblockPIN(testCtx(t), c, puk, newPIN); err != nil {
		t.Fatal(err)
	}
	zero("UnblockPIN", puk, newPIN)
	pin = []byte(testPIN)
	_, release, err := tp.Signer(testCtx(t), c, pin)
	if err != nil {
		t.Fatal(err)
	}
	release()
	zero("Signer", pin)
}

// TestAuthValuesHaveNoZeroBytes guards the go-tpm workaround in authText.
func TestAuthValuesHaveNoZeroBytes(t *testing.T) {
	c := &Card{Salt: randomBytes(16)}
	for i := range 2000 {
		for _, v := range [][]byte{c.authValue(pinSecret, fmt.Appendf(nil, "%08d", i))} {
			if len(v) != 32 || bytes.IndexByte(v, 0) >= 0 {
				t.Fatalf("authValue %x: want 32 bytes without zeros", v)
			}
		}
	}
	if bytes.Equal(c.authValue(pinSecret, []byte(testPIN)), c.authValue(pukSecret, []byte(testPIN))) {
		t.Fatal("PIN and PUK derive the same authValue")
	}
}

// TestInfoAndDeviceID: Info reads swtpm's properties; the device id is a
// SHA-256 in hex and stable across connections.
func TestInfoAndDeviceID(t *testing.T) {
	s, tp := newSim(t)
	info, err := tp.Info(testCtx(t))
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Manufacturer != "IBM" || info.DeviceID != tp.DeviceID() {
		t.Fatalf("Info = %+v, want manufacturer IBM (libtpms) and the device id", info)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(info.DeviceID) {
		t.Fatalf("device id %q is not a hex SHA-256", info.DeviceID)
	}
	tp.Close() // swtpm serves one connection at a time
	if again := openSim(t, s, Policy{}); again.DeviceID() != info.DeviceID {
		t.Fatal("device id differs between two connections to one TPM")
	}
}

// TestCanceledContext: a cancelled context gives up waiting for the TPM.
func TestCanceledContext(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tp.VerifyPIN(ctx, c, []byte(testPIN)); !errors.Is(err, hwerr.ErrCanceled) {
		t.Fatalf("VerifyPIN with a cancelled context: %v", err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
		t.Fatalf("cancelled call counted a try: %+v, %v", tr, err)
	}
}

// TestOpenUnavailable: no TPM at the address is hwerr.ErrUnavailable.
func TestOpenUnavailable(t *testing.T) {
	if _, err := Open(testCtx(t), Config{Simulator: "127.0.0.1:1"}); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Fatalf("Open(no simulator) = %v", err)
	}
	if _, err := Open(testCtx(t), Config{Device: "/nonexistent/tpm"}); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Fatalf("Open(no device) = %v", err)
	}
}

// scriptedTPM answers with a list of response codes, one per command: a
// fake below go-tpm's transport.TPM, because swtpm cannot be made to answer
// TPM_RC_RETRY on demand.
type scriptedTPM struct {
	codes []tpm2.TPMRC
	sent  int
}

func (s *scriptedTPM) Send([]byte) ([]byte, error) {
	rc := s.codes[min(s.sent, len(s.codes)-1)]
	s.sent++
	return []byte{0x80, 0x01, 0, 0, 0, 10, byte(rc >> 24), byte(rc >> 16), byte(rc >> 8), byte(rc)}, nil
}

func TestRetryTransport(t *testing.T) {
	for _, tc := range []struct {
		codes    []tpm2.TPMRC
		wantSent int
		wantRC   tpm2.TPMRC
	}{
		{[]tpm2.TPMRC{tpm2.TPMRCRetry, tpm2.TPMRCYielded, tpm2.TPMRCTesting, 0}, 4, 0},
		{[]tpm2.TPMRC{tpm2.TPMRCLockout}, 1, tpm2.TPMRCLockout},
		{[]tpm2.TPMRC{tpm2.TPMRCRetry}, maxRetries + 1, tpm2.TPMRCRetry},
	} {
		inner := &scriptedTPM{codes: tc.codes}
		rsp, err := (&retryTransport{inner: inner}).Send([]byte{0})
		if err != nil || inner.sent != tc.wantSent || responseCode(rsp) != tc.wantRC {
			t.Errorf("codes %v: sent %d, rc %v, err %v; want %d, %v", tc.codes, inner.sent, responseCode(rsp), err, tc.wantSent, tc.wantRC)
		}
	}
}

// countLoaded counts transient objects and loaded sessions (HMAC and
// policy) in the TPM.
func countLoaded(t *testing.T, tp *TPM) int {
	t.Helper()
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer tp.unlock()
	n := 0
	for _, first := range []tpm2.TPMHandle{0x80000000, 0x02000000} {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(tp.tr)
		if err != nil {
			t.Fatal(err)
		}
		hs, _ := rsp.CapabilityData.Data.Handles()
		for _, h := range hs.Handle {
			if sameHandleKind(h, first) {
				n++
			}
		}
	}
	return n
}

// TestOpenFlushesStale: objects and sessions a killed owner left in swtpm
// (its held card key, PIN session and signing policy session, and what
// an operation had loaded when it died) are flushed by the next Open;
// operations leave nothing loaded but what is held for the next signature.
func TestOpenFlushesStale(t *testing.T) {
	s, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	if n := countLoaded(t, tp); n != 3 {
		t.Fatalf("%d objects or sessions left loaded after create and sign, want the cached key, the PIN session and the signing session", n)
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); err != nil {
		t.Fatal(err)
	}
	if n := countLoaded(t, tp); n != 3 {
		t.Fatalf("%d objects or sessions left loaded after a PIN check, want the same 3", n)
	}
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := (tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(tpm2.ECCSRKTemplate)}).Execute(tp.tr); err != nil {
		t.Fatal(err)
	}
	tp.unlock()
	if n := countLoaded(t, tp); n != 4 {
		t.Fatalf("%d loaded, want the 3 held and the one left behind", n)
	}
	tp.Abort() // as a kill would: nothing is flushed
	again := openSim(t, s, Policy{})
	if n := countLoaded(t, again); n != 0 {
		t.Fatalf("%d objects or sessions still loaded after Open", n)
	}
	signAndVerify(t, again, c, testPIN, cardKey(t, c))
}

// TestRetryTransportContext: with the context ended, commands are refused
// but TPM2_FlushContext still goes out.
func TestRetryTransportContext(t *testing.T) {
	op := new(operation)
	op.end(context.Canceled)
	inner := &scriptedTPM{codes: []tpm2.TPMRC{0}}
	r := &retryTransport{inner: inner, op: op}
	sign := []byte{0x80, 0x01, 0, 0, 0, 10, 0, 0, 0x01, 0x5d}
	if _, err := r.Send(sign); !errors.Is(err, hwerr.ErrCanceled) || inner.sent != 0 {
		t.Fatalf("command after cancel: err %v, sent %d", err, inner.sent)
	}
	flush := []byte{0x80, 0x01, 0, 0, 0, 14, 0, 0, 0x01, 0x65, 0x80, 0, 0, 0}
	if _, err := r.Send(flush); err != nil || inner.sent != 1 {
		t.Fatalf("flush after cancel: err %v, sent %d", err, inner.sent)
	}
}

// TestCapacity: a fresh swtpm reports room for hundreds of cards; once
// other indices fill its NV memory, the estimate falls and a create is
// hwerr.ErrDeviceFull (tpm_full), with nothing of the card left behind.
func TestCapacity(t *testing.T) {
	_, tp := newSim(t)
	st, err := tp.State(testCtx(t))
	if err != nil || st.Capacity.CardsLeft < 400 || st.Capacity.HandlesLeft != 512 {
		t.Fatalf("fresh TPM: %+v, %v; want room for 400+ cards", st.Capacity, err)
	}
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	for h := tpm2.TPMHandle(0x01000000); ; h++ { // someone else's indices, as large as the TPM allows
		_, err := tpm2.NVDefineSpace{
			AuthHandle: tp.ownerAuth(),
			PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: h, NameAlg: tpm2.TPMAlgSHA256,
				Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 2048}),
		}.Execute(tp.tr)
		if errors.Is(err, tpm2.TPMRCNVSpace) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	tp.unlock()
	st, err = tp.State(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for ; n < 200; n++ {
		_, _, err = tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN), PUK: []byte(testPUK)})
		if err != nil {
			break
		}
	}
	if !errors.Is(err, hwerr.ErrDeviceFull) {
		t.Fatalf("create on a full TPM (after %d cards): %v, want ErrDeviceFull", n, err)
	}
	// The estimate is an estimate: within 25% of what fitted.
	if est := st.Capacity.CardsLeft; 4*est < 3*n || 4*est > 5*n {
		t.Fatalf("estimated %d more cards (%+v), %d fitted", est, st.Capacity, n)
	}
	if pruned, err := tp.PruneOrphans(testCtx(t), nil); err != nil || pruned != 2*n {
		t.Fatalf("indices after the failed create: pruned %d, %v; want exactly the %d created cards' %d", pruned, err, n, 2*n)
	}
}
