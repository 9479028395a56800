package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/tcp"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/store/boltstore"
	"github.com/hwauthd/hwauthd/tpm"
	"github.com/hwauthd/hwauthd/tpm/attest"
)

// withTPM turns virtual smart cards on over a swtpm.
func withTPM(sw *testenv.SWTPMInstance, mutate ...func(*config.TPM)) func(*config.Config) {
	return func(c *config.Config) {
		c.TPM.Enabled = true
		c.TPM.Simulator = sw.Addr()
		for _, m := range mutate {
			m(&c.TPM)
		}
	}
}

// vscPIN and vscPUK meet the default PIN policy (8 characters or more).
const vscPIN, vscPUK = "24681012", "13579135"

func (h *harness) createVSC(label string, attest bool, nonce []byte) *ipc.VirtualSmartcard {
	h.t.Helper()
	v, err := h.c.CreateVirtualSmartcard(ctxT(h.t), ipc.VirtualSmartcardCreateRequest{
		Label: label, PIN: ipc.Secret(vscPIN), PUK: ipc.Secret(vscPUK), Attest: attest, Nonce: nonce,
	})
	if err != nil {
		h.t.Fatalf("create virtual card: %v", err)
	}
	h.waitFor("card-inserted "+v.ID, func(e ipc.Event) bool { return e.Type == ipc.EventCardInserted && e.Authenticator == v.ID })
	return v
}

// signVSC signs through the daemon and verifies with the card's public key.
func signVSC(t testing.TB, h *harness, id, publicPEM, pin string) error {
	d := sha256.Sum256([]byte(time.Now().String()))
	sig, err := h.c.Sign(ctxT(t), id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: d[:], PIN: ipc.Secret(pin)})
	if err != nil {
		return err
	}
	b, _ := pem.Decode([]byte(publicPEM))
	pub, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return err
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), d[:], sig) {
		return fmt.Errorf("signature does not verify with the card's public key")
	}
	return nil
}

func TestVirtualSmartcardLifecycle(t *testing.T) {
	// swtpm at its default dictionary-attack settings (3 tries): the
	// card's own counter (5 tries) is the TPM's PIN Fail index, not the
	// machine-wide lockout.
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	nonce := []byte("enrollment-4711")
	v := h.createVSC("Alice laptop", true, nonce)
	if v.Device == "" || v.PINRetriesLeft != hwerr.TriesLeft(5) || v.Attestation == nil {
		t.Fatalf("created: %+v", v)
	}
	// IT checks that the key lives in this TPM.
	ak, _ := pem.Decode([]byte(v.Attestation.AKPublic))
	pubBlock, _ := pem.Decode([]byte(v.PublicKey))
	cardKey, err := x509.ParsePKIXPublicKey(pubBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	att := &device.KeyAttestation{AKPublic: ak.Bytes, KeyPublic: v.Attestation.KeyPublic, CertifyInfo: v.Attestation.CertifyInfo, Signature: v.Attestation.Signature}
	if err := attest.Verify(att, cardKey, nonce); err != nil {
		t.Fatalf("attestation: %v", err)
	}
	if err := attest.Verify(att, cardKey, []byte("other nonce")); err == nil {
		t.Fatal("attestation verified with the wrong nonce")
	}
	// It is an authenticator like a physical card.
	au, err := h.c.Authenticator(ctx, v.ID)
	if err != nil || au.Kind != ipc.KindVirtualSmartcard || au.Backend != ipc.BackendTPM || au.Device != v.Device {
		t.Fatalf("authenticator: %+v %v", au, err)
	}
	if err := signVSC(t, h, v.ID, v.PublicKey, vscPIN); err != nil {
		t.Fatal(err)
	}
	// An RSA algorithm for the card's P-256 key is refused before the PIN
	// reaches the TPM: the wrong PIN below spends no try (the count-down
	// further on starts from 5).
	d := sha256.Sum256([]byte("an RSA algorithm"))
	if _, err := h.c.Sign(ctx, v.ID, ipc.SignRequest{Key: "9a", Algorithm: "rsa-pkcs1v15-sha256", Digest: d[:], PIN: ipc.Secret("00000000")}); apiCode(err) != ipc.CodeNotSupported {
		t.Fatalf("RSA algorithm with a P-256 virtual card: %v, want not_supported", err)
	}
	// CSR signed in the TPM, then the issued certificate is imported.
	csrResp, err := h.c.VirtualSmartcardCSR(ctx, v.ID, ipc.CSRRequest{Subject: "CN=Alice Example,O=Example", UPN: "alice@corp.example", PIN: ipc.Secret(vscPIN)})
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode([]byte(csrResp))
	csr, err := x509.ParseCertificateRequest(cb.Bytes)
	if err != nil || csr.CheckSignature() != nil || csr.Subject.CommonName != "Alice Example" {
		t.Fatalf("CSR: %v %+v", err, csr)
	}
	certPEM := issue(t, csr.PublicKey, "Alice Example")
	if _, err := h.c.ImportVirtualSmartcardCertificate(ctx, v.ID, issue(t, mustKey(t).Public(), "Alice Example")); apiCode(err) != ipc.CodeCertificateInvalid {
		t.Fatalf("certificate for another key: %v", err)
	}
	if _, err := h.c.ImportVirtualSmartcardCertificate(ctx, v.ID, certPEM); err != nil {
		t.Fatal(err)
	}
	// Wrong PINs count down from 5 and block; the PUK unblocks; a PIN change
	// keeps key and certificate.
	for want := 4; want >= 1; want-- {
		if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte("00000000"))); !containsRetries(err, want) {
			t.Fatalf("wrong PIN: %v, want %d left", err, want)
		}
	}
	if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte("00000000"))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("last try: %v", err)
	}
	h.waitFor("pin-blocked", func(e ipc.Event) bool { return e.Type == ipc.EventPINBlocked && e.Authenticator == v.ID })
	if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte(vscPIN))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("blocked card: %v", err)
	}
	if err := pinOp(h.c.UnblockPIN(ctx, v.ID, []byte(vscPUK), []byte("11223344"))); err != nil {
		t.Fatal(err)
	}
	if err := pinOp(h.c.ChangePIN(ctx, v.ID, []byte("11223344"), []byte("44556677"))); err != nil {
		t.Fatal(err)
	}
	if err := pinOp(h.c.ChangePIN(ctx, v.ID, []byte("44556677"), []byte("12"))); apiCode(err) != ipc.CodePINPolicy {
		t.Fatalf("short PIN: %v", err)
	}
	after, err := h.c.VirtualSmartcard(ctx, v.ID)
	if err != nil || after.PublicKey != v.PublicKey || after.Certificate != certPEM {
		t.Fatalf("PIN change altered the card: %+v %v", after, err)
	}

	// The card survives a daemon restart (records in the state file, key
	// in the TPM).
	state := h.cfg.Daemon.StateDir
	h.stop()
	h2 := start(t, withTPM(sw), func(c *config.Config) { c.Daemon.StateDir = state })
	h2.waitFor("the card after restart", func(e ipc.Event) bool { return e.Type == ipc.EventCardInserted && e.Authenticator == v.ID })
	if err := signVSC(t, h2, v.ID, v.PublicKey, "44556677"); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	// Registered like any card, it signs its user in.
	if _, err := h2.c.Register(ctx, alice, ipc.RegisterRequest{Authenticator: v.ID, PIN: ipc.Secret("44556677")}); err != nil {
		t.Fatal(err)
	}
	if _, err := h2.signIn(alice, "44556677"); err != nil {
		t.Fatalf("sign-in with the virtual card: %v", err)
	}
	// Deleting destroys it for good.
	if err := h2.c.DeleteVirtualSmartcard(ctx, v.ID); err != nil {
		t.Fatal(err)
	}
	h2.waitFor("card-removed", func(e ipc.Event) bool { return e.Type == ipc.EventCardRemoved && e.Authenticator == v.ID })
	if _, err := h2.c.VirtualSmartcard(ctx, v.ID); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("deleted card: %v", err)
	}
}

func TestVirtualSmartcardLimitsAndAccess(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw, func(c *config.TPM) { c.MaxCards = 1 }))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	if _, err := h.c.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{Label: "x", PIN: ipc.Secret("123"), PUK: ipc.Secret(vscPUK)}); apiCode(err) != ipc.CodePINPolicy {
		t.Fatalf("short PIN: %v", err)
	}
	h.createVSC("first", false, nil)
	if _, err := h.c.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{Label: "second", PIN: ipc.Secret(vscPIN), PUK: ipc.Secret(vscPUK)}); apiCode(err) != ipc.CodeLimitReached {
		t.Fatalf("over the per-device limit: %v", err)
	}
	calls := runAs(t, malloryUID, malloryUID, h.socket, []call{
		{Method: "POST", Path: "/v1/virtual-smartcards", Body: fmt.Sprintf(`{"label": "m", "pin": %q, "puk": %q}`, vscPIN, vscPUK)},
		{Method: "GET", Path: "/v1/virtual-smartcards"},
	})
	for _, c := range calls {
		if errorCode(c.Answer) != "unauthorized" {
			t.Errorf("%s %s as nobody: %d %s", c.Method, c.Path, c.Status, c.Answer)
		}
	}
}

// issue returns a PEM certificate with common name cn for pub from a
// throwaway CA.
func issue(t *testing.T, pub crypto.PublicKey, cn string) string {
	t.Helper()
	ca := mustKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "CA"}}, pub, ca)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestDeletingVirtualCardRemovesItsRegistrations: deleting a card removes
// its registrations (they no longer count against the user's five), moves
// the user's default to another registration and says so in events; a
// deletion cut short after the TPM step (the daemon stopped before the
// registrations went) is completed at the next start.
func TestDeletingVirtualCardRemovesItsRegistrations(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	v1 := h.createVSC("first", false, nil)
	v2 := h.createVSC("second", false, nil)
	v3 := h.createVSC("third", false, nil)
	var regs []*ipc.Registration
	for _, v := range []*ipc.VirtualSmartcard{v1, v2, v3} {
		r, err := h.c.Register(ctx, alice, ipc.RegisterRequest{Authenticator: v.ID, PIN: ipc.Secret(vscPIN)})
		if err != nil {
			t.Fatal(err)
		}
		regs = append(regs, r)
	}
	if err := h.c.DeleteVirtualSmartcard(ctx, v1.ID); err != nil {
		t.Fatal(err)
	}
	h.waitFor("registration-removed "+regs[0].ID, func(e ipc.Event) bool {
		return e.Type == ipc.EventRegistrationRemoved && e.User == alice && e.Authenticator == v1.ID
	})
	got, err := h.c.Registrations(ctx, alice)
	if err != nil || len(got.Registrations) != 2 || got.Default != regs[1].ID {
		t.Fatalf("after deleting the default card: %+v, %v; want 2 left and %s the default", got, err, regs[1].ID)
	}

	// The daemon stops after the TPM step of deleting v2: its indices are
	// gone but its record and registration are still stored.
	state := h.cfg.Daemon.StateDir
	h.stop()
	st, err := boltstore.Open(filepath.Join(state, "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := st.Card(ctx, strings.TrimPrefix(v2.ID, "vsc-"))
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	var card tpm.Card
	if err := json.Unmarshal(blob, &card); err != nil {
		t.Fatal(err)
	}
	tp, err := tpm.Open(ctx, tpm.Config{Simulator: sw.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := tp.DestroyCard(ctx, &card); err != nil {
		t.Fatal(err)
	}
	tp.Close()
	h2 := start(t, withTPM(sw), func(c *config.Config) { c.Daemon.StateDir = state })
	h2.waitBackendUp("tpm")
	got, err = h2.c.Registrations(ctx, alice)
	if err != nil || len(got.Registrations) != 1 || got.Default != regs[2].ID {
		t.Fatalf("after the interrupted deletion: %+v, %v; want only %s", got, err, regs[2].ID)
	}
	if _, err := h2.c.VirtualSmartcard(ctx, v2.ID); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("the half-deleted card: %v", err)
	}
	if err := signVSC(t, h2, v3.ID, v3.PublicKey, vscPIN); err != nil {
		t.Fatal(err)
	}
}

// TestTPMLossAndReturn: the TPM (swtpm) is killed: card calls answer
// backend_unavailable and status says down and why; it comes back: the
// first call works. Status also shows the TPM's lockout parameters (swtpm's
// defaults, untouched) and its room for cards.
func TestTPMLossAndReturn(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	v := h.createVSC("laptop", false, nil)
	st, err := h.c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ts := st.Backends["tpm"].TPM
	if ts == nil || ts.Lockout.MaxTries != 3 || ts.Lockout.Failures != 0 || ts.Lockout.InLockout ||
		ts.Cards != 1 || ts.MaxCards != 10 || ts.CardsLeft < 400 {
		t.Fatalf("TPM status %+v: want swtpm's default lockout (3 tries), 1 card of 10, room for hundreds", ts)
	}
	if err := signVSC(t, h, v.ID, v.PublicKey, vscPIN); err != nil {
		t.Fatal(err)
	}
	sw.Kill(t)
	if err := signVSC(t, h, v.ID, v.PublicKey, vscPIN); apiCode(err) != ipc.CodeBackendUnavailable {
		t.Fatalf("sign with the TPM gone: %v, want backend_unavailable", err)
	}
	st, err = h.c.Status(ctx)
	if err != nil || st.Backends["tpm"].State != ipc.BackendDown || st.Backends["tpm"].Detail == "" {
		t.Fatalf("status with the TPM gone: %+v, %v; want down with a reason", st.Backends["tpm"], err)
	}
	sw.Start(t)
	if err := signVSC(t, h, v.ID, v.PublicKey, vscPIN); err != nil {
		t.Fatalf("first sign after the TPM came back: %v", err)
	}
	if st, err := h.c.Status(ctx); err != nil || st.Backends["tpm"].State != ipc.BackendUp {
		t.Fatalf("status after the TPM came back: %+v, %v", st.Backends["tpm"], err)
	}
	var wrong *hwerr.PINIncorrect
	if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte("00000000"))); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("wrong PIN after the return: %v, want 4 tries left", err)
	}
}

// TestNoPINOracleOnAnotherUsersVirtualCard (issue 13, item 1): another
// local user guessing the PIN of a virtual card registered to alice, by
// registering it to herself or through verify and sign, reaches neither the
// card's own try counter nor the TPM's dictionary-attack counter.
func TestNoPINOracleOnAnotherUsersVirtualCard(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	v := h.createVSC("alice's", false, nil)
	if _, err := h.c.Register(ctx, alice, ipc.RegisterRequest{Authenticator: v.ID, PIN: ipc.Secret(vscPIN)}); err != nil {
		t.Fatal(err)
	}
	state := func() (int, uint32) {
		t.Helper()
		a, err := h.c.Authenticator(ctx, v.ID)
		left, known := a.PIN.RetriesLeft.Left()
		if err != nil || !known {
			t.Fatalf("virtual card PIN state: %+v %v", a, err)
		}
		st, err := h.c.Status(ctx)
		if err != nil || st.Backends["tpm"].TPM == nil {
			t.Fatalf("TPM status: %+v %v", st, err)
		}
		return left, st.Backends["tpm"].TPM.Lockout.Failures
	}
	tries, failures := state()
	d := sha256.Sum256([]byte("x"))
	var calls []call
	for _, guess := range []string{"11111111", "22222222", "33333333"} {
		calls = append(calls,
			call{Method: "POST", Path: "/v1/users/" + mallory + "/registrations", Body: fmt.Sprintf(`{"authenticator": %q, "pin": %q}`, v.ID, guess)},
			call{Method: "POST", Path: "/v1/authenticators/" + v.ID + "/pin/verify", Body: fmt.Sprintf(`{"pin": %q}`, guess)},
			call{Method: "POST", Path: "/v1/authenticators/" + v.ID + "/sign", Body: fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q, "pin": %q}`, base64.StdEncoding.EncodeToString(d[:]), guess)},
		)
	}
	for i, c := range runAs(t, malloryUID, malloryUID, h.socket, calls) {
		want := "unauthorized"
		if i%3 == 0 {
			want = "registered_to_another_user"
		}
		if errorCode(c.Answer) != want {
			t.Errorf("%s %s as %s: %d %s, want %s", c.Method, c.Path, mallory, c.Status, c.Answer, want)
		}
	}
	if gotTries, gotFailures := state(); gotTries != tries || gotFailures != failures {
		t.Fatalf("after the guesses: card tries %d -> %d, TPM lockout failures %d -> %d", tries, gotTries, failures, gotFailures)
	}
}

// TestVirtualSmartcardAttestationWithCLI is IT's two-step attestation with
// hwauthctl: the device writes a request, the verifier (no daemon) checks
// it against the TPM maker's CA and writes a challenge, the device answers
// it, the verifier accepts the answer and prints the card's key. Another
// maker's CA and a replayed answer are refused.
func TestVirtualSmartcardAttestationWithCLI(t *testing.T) {
	sw := testenv.SWTPMWithEKCert(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	v := h.createVSC("attested", false, nil)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	if err := os.WriteFile(file("ca.pem"), sw.EKCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file("other-ca.pem"), testenv.SWTPMWithEKCert(t).EKCA(t), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := buildCmd(t, "hwauthctl")
	ctl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"--socket", h.socket}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("hwauthctl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	fails := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{"--socket", h.socket}, args...)...).CombinedOutput()
		if err == nil {
			t.Fatalf("hwauthctl %v succeeded:\n%s", args, out)
		}
		return string(out)
	}
	ctl("vsc", "attest", v.ID, "--out", file("request.json"))
	if out := fails("vsc", "verify-attestation", "--ek-ca", file("other-ca.pem"), "--state", file("state"), file("request.json")); !strings.Contains(out, "EK CA") {
		t.Fatalf("another maker's CA: %s", out)
	}
	ctl("vsc", "verify-attestation", "--ek-ca", file("ca.pem"), "--state", file("state"), "--out", file("challenge.json"), file("request.json"))
	ctl("vsc", "attest", v.ID, "--challenge", file("challenge.json"), "--out", file("answer.json"))
	// A second challenge for the same request: the first answer is a replay.
	ctl("vsc", "verify-attestation", "--ek-ca", file("ca.pem"), "--state", file("state2"), "--out", file("challenge2.json"), file("request.json"))
	fails("vsc", "verify-attestation", "--state", file("state2"), file("answer.json"))
	out := ctl("vsc", "verify-attestation", "--state", file("state"), file("answer.json"))
	if !strings.Contains(out, "Verified") || !strings.Contains(out, strings.TrimSpace(v.PublicKey)) {
		t.Fatalf("verified output does not name the card's key:\n%s\nwant\n%s", out, v.PublicKey)
	}
}

// TestVirtualSmartcardAdminKeyUnblock: IT creates a card with an admin key
// (hwauthctl vsc create --admin-key); once its PIN is blocked, hwauthctl vsc
// unblock with the admin key's private half answers the card's challenge
// and sets a new PIN; another key is refused and leaves the card blocked.
func TestVirtualSmartcardAdminKeyUnblock(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	dir := t.TempDir()
	writeKey := func(name string) string {
		k := mustKey(t)
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		pubDER, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		priv, pub := filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".pub.pem")
		if err := os.WriteFile(priv, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600); err != nil {
			t.Fatal(err)
		}
		return priv
	}
	admin, other := writeKey("admin"), writeKey("other")
	bin := buildCmd(t, "hwauthctl")
	ctl := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append([]string{"--socket", h.socket, "--json", "--pin-stdin"}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := ctl(vscPIN+"\n", "vsc", "create", "--label", "kiosk", "--no-puk", "--admin-key", strings.TrimSuffix(admin, ".pem")+".pub.pem")
	if err != nil {
		t.Fatalf("vsc create --admin-key: %v\n%s", err, out)
	}
	var v ipc.VirtualSmartcard
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for range 5 {
		_ = pinOp(h.c.VerifyPIN(ctx, v.ID, []byte("00000000")))
	}
	if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte(vscPIN))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("card not blocked: %v", err)
	}
	if out, err := ctl("13572468\n13572468\n", "vsc", "unblock", v.ID, "--admin-key", other); err == nil || !strings.Contains(out, "admin key") {
		t.Fatalf("unblock with another key: %v\n%s", err, out)
	}
	if err := pinOp(h.c.VerifyPIN(ctx, v.ID, []byte(vscPIN))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("a refused unblock changed the card: %v", err)
	}
	if out, err := ctl("13572468\n13572468\n", "vsc", "unblock", v.ID, "--admin-key", admin); err != nil || strings.Contains(out, "13572468") {
		t.Fatalf("vsc unblock: %v\n%s", err, out)
	}
	if err := signVSC(t, h, v.ID, v.PublicKey, "13572468"); err != nil {
		t.Fatalf("sign with the new PIN: %v", err)
	}
}

// TestVirtualCardBlocksOnItsOwnCounter is the issue's case through the
// daemon on swtpm at its default lockout (3 tries, never raised): five
// wrong PINs block one card with pin_blocked, a second card of the same
// TPM still signs, the TPM's lockout counter does not move, and the PUK
// unblocks the first.
func TestVirtualCardBlocksOnItsOwnCounter(t *testing.T) {
	sw := testenv.SWTPM(t)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	a, b := h.createVSC("first", false, nil), h.createVSC("second", false, nil)
	lockout := func() ipc.TPMLockout {
		t.Helper()
		st, err := h.c.Status(ctx)
		if err != nil || st.Backends["tpm"].TPM == nil {
			t.Fatalf("status: %+v %v", st, err)
		}
		return st.Backends["tpm"].TPM.Lockout
	}
	before := lockout()
	if before.MaxTries >= 5 {
		t.Fatalf("swtpm's lockout threshold is %d; five wrong PINs must exceed it for this test to mean anything", before.MaxTries)
	}
	var wrong *hwerr.PINIncorrect
	for left := 4; left >= 1; left-- {
		if err := pinOp(h.c.VerifyPIN(ctx, a.ID, []byte("00000000"))); !errors.As(err, &wrong) || wrong.RetriesLeft != hwerr.TriesLeft(left) {
			t.Fatalf("wrong PIN: %v, want %d left", err, left)
		}
	}
	if err := pinOp(h.c.VerifyPIN(ctx, a.ID, []byte("00000000"))); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("fifth wrong PIN: %v, want pin_blocked", err)
	}
	if err := signVSC(t, h, a.ID, a.PublicKey, vscPIN); apiCode(err) != ipc.CodePINBlocked {
		t.Fatalf("right PIN on the blocked card: %v", err)
	}
	if err := signVSC(t, h, b.ID, b.PublicKey, vscPIN); err != nil {
		t.Fatalf("the other card: %v", err)
	}
	if after := lockout(); after.Failures != before.Failures || after.InLockout {
		t.Fatalf("TPM lockout %+v -> %+v: card PINs reached the machine-wide counter", before, after)
	}
	if err := pinOp(h.c.UnblockPIN(ctx, a.ID, []byte(vscPUK), []byte("86420864"))); err != nil {
		t.Fatal(err)
	}
	if err := signVSC(t, h, a.ID, a.PublicKey, "86420864"); err != nil {
		t.Fatal(err)
	}
}

// TestFullTPMAnswersTPMFull: on a TPM whose NV memory other software
// filled, creating cards ends in tpm_full (507), worded for IT, not the
// user's limit of five; status's estimate of cards left reaches 0.
func TestFullTPMAnswersTPMFull(t *testing.T) {
	sw := testenv.SWTPM(t)
	fillNV(t, sw)
	h := start(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)
	var err error
	n := 0
	for ; n < 50; n++ {
		_, err = h.c.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{
			Label: fmt.Sprintf("card %d", n), PIN: ipc.Secret(vscPIN), PUK: ipc.Secret(vscPUK)})
		if err != nil {
			break
		}
	}
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeTPMFull || e.Status() != 507 || strings.Contains(e.Message, "your authenticators") {
		t.Fatalf("create on a full TPM (after %d cards): %v, want tpm_full (507) for IT", n, err)
	}
	st, err := h.c.Status(ctx)
	if err != nil || st.Backends["tpm"].TPM == nil || st.Backends["tpm"].TPM.CardsLeft != 0 || st.Backends["tpm"].TPM.MaxCards != n {
		t.Fatalf("status on a full TPM: %+v %v; want 0 cards left, max_cards capped at %d", st.Backends["tpm"].TPM, err, n)
	}
}

// fillNV fills a TPM's NV memory with large indices, as other software
// could, before hwauthd starts.
func fillNV(t *testing.T, sw *testenv.SWTPMInstance) {
	t.Helper()
	tr, err := tcp.Open(tcp.Config{CommandAddress: sw.Addr(), PlatformAddress: sw.PlatformAddr()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	for h := tpm2.TPMHandle(0x01000000); ; h++ {
		_, err := tpm2.NVDefineSpace{
			AuthHandle: tpm2.TPMRHOwner,
			PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{NVIndex: h, NameAlg: tpm2.TPMAlgSHA256,
				Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, NT: tpm2.TPMNTOrdinary}, DataSize: 2048}),
		}.Execute(tr)
		if errors.Is(err, tpm2.TPMRCNVSpace) {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}
