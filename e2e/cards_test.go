package e2e

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// pinOp drops a PIN operation's result, keeping its error.
func pinOp(_ *ipc.PINResult, err error) error { return err }

// cardPIN reads the emulated card's own retry counter, outside the daemon,
// with an empty VERIFY (which spends no try).
func cardPIN(t testing.TB, c *card) piv.PINStatus {
	t.Helper()
	cl := piv.NewClient(pivcard.Transmitter(c.Card))
	if _, err := cl.Select(context.Background()); err != nil {
		t.Fatal(err)
	}
	st, err := cl.PINStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestCardsAppearAndDisappearAsEvents(t *testing.T) {
	h := start(t)
	ctx := ctxT(t)
	a := h.insert(0, pivcard.Options{Label: "Alice Card"})
	b := h.insert(1, pivcard.Options{Label: "Bob Card"})
	if a.id == b.id {
		t.Fatalf("two cards share id %s", a.id)
	}
	list, err := h.c.Authenticators(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]ipc.Authenticator{}
	for _, au := range list {
		byID[au.ID] = au
	}
	for _, c := range []*card{a, b} {
		au, ok := byID[c.id]
		if !ok {
			t.Fatalf("%s not listed: %+v", c.id, list)
		}
		if au.Kind != ipc.KindSmartcard || au.Backend != ipc.BackendPIV || au.Reader != h.pcsc.ReaderName(c.reader) {
			t.Errorf("%s: kind %s backend %s reader %q", c.id, au.Kind, au.Backend, au.Reader)
		}
		if len(au.Keys) != 1 || au.Keys[0].ID != "9a" || au.Keys[0].Algorithm != "ecc-p256" {
			t.Fatalf("%s keys: %+v", c.id, au.Keys)
		}
		block, _ := pem.Decode([]byte(au.Keys[0].Certificate))
		if block == nil || string(block.Bytes) != string(c.Certificate(piv.SlotAuthentication)) {
			t.Errorf("%s: listed certificate is not the card's", c.id)
		}
		if au.PIN.RetriesLeft != hwerr.TriesLeft(3) {
			t.Errorf("%s: retries %v, want 3", c.id, au.PIN.RetriesLeft)
		}
	}
	if byID[a.id].Label != "Alice Card" {
		t.Errorf("label %q", byID[a.id].Label)
	}
	readers, err := h.c.Readers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	present := 0
	for _, r := range readers {
		if r.CardPresent && r.ATR != "" {
			present++
		}
	}
	if len(readers) != 2 || present != 2 {
		t.Fatalf("readers: %+v", readers)
	}

	h.remove(a)
	if _, err := h.c.Authenticator(ctx, a.id); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("removed card still answers: %v", err)
	}
	// Re-inserting the same card gives the same id (derived from its GUID).
	h.reinsert(a)
	if _, err := h.c.Authenticator(ctx, a.id); err != nil {
		t.Fatalf("re-inserted card: %v", err)
	}
}

func TestWrongPINCountsDownBlocksAndPUKUnblocks(t *testing.T) {
	h := start(t)
	ctx := ctxT(t)
	c := h.insert(0, pivcard.Options{})

	err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte("654321")))
	var wrong *hwerr.PINIncorrect
	if apiCode(err) != ipc.CodePINIncorrect || !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("wrong PIN: %v", err)
	}
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("card says %v tries left, daemon said 2", st.RetriesLeft)
	}
	// Reading status, lists and the authenticator spends no try.
	for range 3 {
		if _, err := h.c.Authenticators(ctx); err != nil {
			t.Fatal(err)
		}
		au, err := h.c.Authenticator(ctx, c.id)
		if err != nil {
			t.Fatal(err)
		}
		if au.PIN.RetriesLeft != hwerr.TriesLeft(2) {
			t.Fatalf("shown retries %v, want 2", au.PIN.RetriesLeft)
		}
	}
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(2) {
		t.Fatalf("reading state spent a try: %v left", st.RetriesLeft)
	}
	// The right PIN works and leaves the counter full; the daemon drops the
	// security status again afterwards.
	if err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte(pivcard.DefaultPIN))); err != nil {
		t.Fatal(err)
	}
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(3) || st.Verified {
		t.Fatalf("after the right PIN: %+v", st)
	}
	for want := 2; want >= 1; want-- {
		err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte("000000")))
		if !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(want) {
			t.Fatalf("wrong PIN %d: %v", 3-want, err)
		}
	}
	// The try that blocks answers pin_blocked, not "0 tries left".
	if err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte("000000"))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("last try: %v", err)
	}
	h.waitFor("pin-blocked", func(e ipc.Event) bool { return e.Type == ipc.EventPINBlocked && e.Authenticator == c.id })
	if err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte(pivcard.DefaultPIN))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("blocked PIN: %v", err)
	}
	if st := cardPIN(t, c); !st.Blocked {
		t.Fatalf("card not blocked: %+v", st)
	}
	if err := pinOp(h.c.UnblockPIN(ctx, c.id, []byte("87654321"), []byte("24680135"))); apiCode(err) != ipc.CodePINIncorrect {
		t.Fatalf("wrong PUK: %v", err)
	}
	if err := pinOp(h.c.UnblockPIN(ctx, c.id, []byte(pivcard.DefaultPUK), []byte("24680135"))); err != nil {
		t.Fatalf("unblock: %v", err)
	}
	if err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte("24680135"))); err != nil {
		t.Fatalf("new PIN: %v", err)
	}
	if err := pinOp(h.c.ChangePIN(ctx, c.id, []byte("24680135"), []byte("11223344"))); err != nil {
		t.Fatalf("change PIN: %v", err)
	}
	if err := pinOp(h.c.VerifyPIN(ctx, c.id, []byte("11223344"))); err != nil {
		t.Fatalf("changed PIN: %v", err)
	}
	if err := pinOp(h.c.ChangePIN(ctx, c.id, []byte("11223344"), []byte("12"))); apiCode(err) != ipc.CodePINPolicy {
		t.Fatalf("too short a new PIN: %v", err)
	}
}

// signAndVerify signs a fresh digest through the daemon and checks it with
// the public key in the card's own certificate.
func signAndVerify(t testing.TB, h *harness, c *card, slot piv.Slot, alg string) error {
	msg := make([]byte, 64)
	_, _ = rand.Read(msg)
	var digest []byte
	h256 := sha256.Sum256(msg)
	digest = h256[:]
	if alg == "ecdsa-sha384" {
		h384 := sha512.Sum384(msg)
		digest = h384[:]
	}
	sig, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: slot.String(), Algorithm: alg, Digest: digest, PIN: ipc.Secret(pivcard.DefaultPIN)})
	if err != nil {
		return err
	}
	cert, err := x509.ParseCertificate(c.Certificate(slot))
	if err != nil {
		return err
	}
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(pub, digest, sig) {
			return fmt.Errorf("%s: ECDSA signature does not verify", alg)
		}
	case *rsa.PublicKey:
		if alg == "rsa-pss-sha256" {
			return rsa.VerifyPSS(pub, crypto.SHA256, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig)
	}
	return nil
}

func TestSignEveryAlgorithm(t *testing.T) {
	h := start(t)
	slots, err := pivcard.ParseSlots("9a=p256,9c=p384,9d=rsa2048")
	if err != nil {
		t.Fatal(err)
	}
	c := h.insert(0, pivcard.Options{Slots: slots})
	for _, tc := range []struct {
		slot piv.Slot
		alg  string
	}{
		{piv.SlotAuthentication, "ecdsa-sha256"},
		{piv.SlotSignature, "ecdsa-sha384"},
		{piv.SlotKeyManagement, "rsa-pkcs1v15-sha256"},
		{piv.SlotKeyManagement, "rsa-pss-sha256"},
	} {
		if err := signAndVerify(t, h, c, tc.slot, tc.alg); err != nil {
			t.Errorf("%s with %s: %v", tc.alg, tc.slot, err)
		}
	}
	// No PIN for a slot that needs one: pin_required, nothing signed.
	d := sha256.Sum256([]byte("x"))
	if _, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: d[:]}); apiCode(err) != ipc.CodePINRequired {
		t.Errorf("sign without PIN: %v", err)
	}
	if _, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: "9e", Algorithm: "ecdsa-sha256", Digest: d[:], PIN: ipc.Secret(pivcard.DefaultPIN)}); apiCode(err) != ipc.CodeNotFound {
		t.Errorf("sign with an empty slot: %v", err)
	}
	if _, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: d[:5], PIN: ipc.Secret(pivcard.DefaultPIN)}); apiCode(err) != ipc.CodeBadRequest {
		t.Errorf("short digest: %v", err)
	}
}

func TestConcurrentSigningOnOneCard(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for range 10 {
		wg.Go(func() { errs <- signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("concurrent signing disturbed the PIN counter: %+v", st)
	}
}

// blockingCard holds GENERAL AUTHENTICATE until released, so a test can pull
// the card in the middle of a signature.
type blockingCard struct {
	*pivcard.Card
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingCard) Transmit(apdu []byte) []byte {
	if len(apdu) > 1 && apdu[1] == piv.InsGeneralAuthenticate {
		b.once.Do(func() { close(b.entered) })
		<-b.release
	}
	return b.Card.Transmit(apdu)
}

func TestCardPulledDuringSignature(t *testing.T) {
	h := start(t)
	pc, err := pivcard.New(pivcard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bc := &blockingCard{Card: pc, entered: make(chan struct{}), release: make(chan struct{})}
	c := h.insertCard(0, pc, bc)
	result := make(chan error, 1)
	go func() { result <- signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256") }()
	select {
	case <-bc.entered:
	case err := <-result:
		t.Fatalf("signature finished before the card was pulled: %v", err)
	}
	removed := make(chan error, 1)
	go func() { removed <- c.slot.Remove() }()
	err = <-result
	close(bc.release)
	if err := <-removed; err != nil {
		t.Fatal(err)
	}
	if apiCode(err) != ipc.CodeAuthenticatorRemoved {
		t.Fatalf("pulled card: %v", err)
	}
	h.waitFor("card-removed", func(e ipc.Event) bool { return e.Type == ipc.EventCardRemoved && e.Authenticator == c.id })
	// The daemon keeps serving: a new card works.
	c2 := h.insert(1, pivcard.Options{})
	if err := signAndVerify(t, h, c2, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
}

func TestPCSCDKilledAndRestarted(t *testing.T) {
	h := start(t)
	ctx := ctxT(t)
	c := h.insert(0, pivcard.Options{})
	h.pcsc.Kill()
	restarted := false
	t.Cleanup(func() {
		// Leave pcscd running for the tests after this one, pass or fail.
		if !restarted {
			_ = h.pcsc.Start()
		}
	})
	h.waitFor("card-removed after pcscd died", func(e ipc.Event) bool { return e.Type == ipc.EventCardRemoved && e.Authenticator == c.id })
	st, err := h.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Backends["pcsc"].State != ipc.BackendDown {
		t.Fatalf("pcsc state %+v while pcscd is gone", st.Backends["pcsc"])
	}
	d := sha256.Sum256([]byte("x"))
	if _, err := h.c.Sign(ctx, c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: d[:], PIN: ipc.Secret(pivcard.DefaultPIN)}); apiCode(err) != ipc.CodeBackendUnavailable {
		t.Fatalf("request while pcscd is down: %v", err)
	}
	_ = c.slot.Remove()
	restarted = true
	if err := h.pcsc.Start(); err != nil {
		t.Fatal(err)
	}
	h.waitReaders(2)
	h.reinsert(c)
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatalf("after pcscd came back: %v", err)
	}
	st, err = h.c.Status(ctx)
	if err != nil || st.Backends["pcsc"].State != ipc.BackendUp {
		t.Fatalf("status after restart: %+v %v", st, err)
	}
}

func TestBadRequestsKeepTheDaemonServing(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	hc := unixHTTP(h.socket)
	path := "/v1/authenticators/" + c.id + "/pin/verify"
	for _, tc := range []struct {
		name, body string
		status     int
		code       string
	}{
		{"malformed", `{"pin": "1234`, http.StatusBadRequest, "bad_request"},
		{"not an object", `[1,2]`, http.StatusBadRequest, "bad_request"},
		{"unknown field", `{"pin": "123456", "pim": 1}`, http.StatusBadRequest, "bad_request"},
		{"two values", `{"pin": "123456"} {}`, http.StatusBadRequest, "bad_request"},
		{"empty PIN", `{"pin": ""}`, http.StatusBadRequest, "bad_request"},
		{"PIN given twice", `{"pin": "999999", "pin": "123456"}`, http.StatusBadRequest, "bad_request"},
		{"PIN given twice in another case", `{"pin": "999999", "PIN": "123456"}`, http.StatusBadRequest, "bad_request"},
		{"oversized", `{"pin": "` + strings.Repeat("1", 1<<20) + `"}`, http.StatusRequestEntityTooLarge, "too_large"},
	} {
		status, answer, err := do(hc, "POST", path, tc.body)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if status != tc.status || errorCode(answer) != tc.code {
			t.Errorf("%s: %d %s", tc.name, status, answer)
		}
		if strings.Contains(answer, "123456") {
			t.Errorf("%s: answer echoes the PIN: %s", tc.name, answer)
		}
	}
	for _, tc := range []struct{ method, path, code string }{
		{"GET", "/v1/nothing", "not_found"},
		{"DELETE", "/v1/status", "method_not_allowed"},
		{"GET", "/v1/authenticators/piv-0000", "not_found"},
		// Not in canonical form: the envelope, not a redirect.
		{"GET", "/v1/x/../status", "bad_request"},
		{"GET", "//v1/status", "bad_request"},
		{"GET", "/v1/./status", "bad_request"},
		// A NUL byte does not make a shorter account name.
		{"GET", "/v1/users/" + alice + "%00/registrations", "bad_request"},
	} {
		if _, answer, _ := do(hc, tc.method, tc.path, ""); errorCode(answer) != tc.code {
			t.Errorf("%s %s: %s", tc.method, tc.path, answer)
		}
	}
	// None of that spent a try or stopped the daemon.
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("bad requests spent PIN tries: %+v", st)
	}
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
}
