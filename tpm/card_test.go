package tpm

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
)

// issue makes a test CA issue a certificate for the key in the CSR.
func issue(t *testing.T, csrDER []byte) []byte {
	t.Helper()
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		t.Fatalf("parse CSR: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		t.Fatalf("CSR signature made in the TPM does not verify: %v", err)
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: csr.Subject,
		EmailAddresses: csr.EmailAddresses, DNSNames: csr.DNSNames,
		NotBefore: ca.NotBefore, NotAfter: ca.NotAfter, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, leaf, ca, csr.PublicKey, caKey)
	if err != nil {
		t.Fatalf("issue certificate: %v", err)
	}
	return der
}

// TestCreateSignRestartSign is the card's life: create, CSR, certificate,
// sign (checked with the public key and the certificate), restart the
// device, reload from the stored record, sign again.
func TestCreateSignRestartSign(t *testing.T) {
	for _, alg := range []string{AlgECCP256, AlgECCP384, AlgRSA2048} {
		t.Run(alg, func(t *testing.T) {
			s, tp := newSim(t)
			c := createCard(t, tp, alg)
			if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(c.ID) || c.DeviceID != tp.DeviceID() {
				t.Fatalf("card id %q device %q, want 32 hex digits and %q", c.ID, c.DeviceID, tp.DeviceID())
			}
			csr, err := tp.CSR(testCtx(t), c, []byte(testPIN), pkix.Name{CommonName: "alice"}, "alice@example.com", "host.example")
			if err != nil {
				t.Fatalf("CSR: %v", err)
			}
			if err := ImportCertificate(c, issue(t, csr)); err != nil {
				t.Fatalf("ImportCertificate: %v", err)
			}
			cert, err := x509.ParseCertificate(c.Certificate)
			if err != nil {
				t.Fatal(err)
			}
			if cert.EmailAddresses[0] != "alice@example.com" || cert.DNSNames[0] != "host.example" {
				t.Fatalf("SANs lost: %v %v", cert.EmailAddresses, cert.DNSNames)
			}
			signAndVerify(t, tp, c, testPIN, cardKey(t, c))
			signAndVerify(t, tp, c, testPIN, cert.PublicKey)

			record := copyCard(t, c) // the card as the daemon stored it
			tp.Close()
			s.Restart(t)
			tp2 := openSim(t, s, Policy{})
			if tp2.DeviceID() != c.DeviceID {
				t.Fatal("device identity changed across restart")
			}
			if err := tp2.CheckCard(testCtx(t), record); err != nil {
				t.Fatalf("CheckCard after restart: %v", err)
			}
			signAndVerify(t, tp2, record, testPIN, cert.PublicKey)
		})
	}
}

// TestSignSchemes checks the hashes and RSA schemes, and that bad input is
// refused before the PIN is tried.
func TestSignSchemes(t *testing.T) {
	_, tp := newSim(t)
	ecc := createCard(t, tp, AlgECCP384)
	rsaCard := createCard(t, tp, AlgRSA2048)
	msg := []byte("message")
	d256, d384, d512 := sha256.Sum256(msg), sha512.Sum384(msg), sha512.Sum512(msg)
	for _, tc := range []struct {
		card   *Card
		digest []byte
		opts   crypto.SignerOpts
	}{
		{ecc, d256[:], crypto.SHA256},
		{ecc, d384[:], crypto.SHA384},
		{rsaCard, d256[:], crypto.SHA256},
		{rsaCard, d512[:], crypto.SHA512},
		{rsaCard, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthAuto}},
		{rsaCard, d384[:], &rsa.PSSOptions{Hash: crypto.SHA384, SaltLength: rsa.PSSSaltLengthEqualsHash}},
	} {
		sig, err := tp.Sign(testCtx(t), tc.card, []byte(testPIN), tc.digest, tc.opts)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.card.Algorithm, tc.opts, err)
		}
		if err := verify(cardKey(t, tc.card), tc.digest, sig, tc.opts); err != nil {
			t.Fatalf("%s %v: %v", tc.card.Algorithm, tc.opts, err)
		}
	}
	before, err := tp.Tries(testCtx(t), ecc)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		card   *Card
		digest []byte
		opts   crypto.SignerOpts
		want   error
	}{
		{ecc, d256[:20], crypto.SHA256, hwerr.ErrInvalidInput},
		{ecc, d256[:], crypto.MD5, hwerr.ErrNotSupported},
		{ecc, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256}, hwerr.ErrNotSupported},
		{rsaCard, d256[:], &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: 5}, hwerr.ErrNotSupported},
	} {
		_, err := tp.Sign(testCtx(t), bad.card, []byte(wrongPIN), bad.digest, bad.opts)
		if !errors.Is(err, bad.want) {
			t.Errorf("Sign(%v) = %v, want %v", bad.opts, err, bad.want)
		}
	}
	if after, err := tp.Tries(testCtx(t), ecc); err != nil || after != before {
		t.Fatalf("refused input cost a PIN try: %+v -> %+v (%v)", before, after, err)
	}
}

// TestWrongPINsBlockTheCardNotTheTPM is the issue's case on a swtpm at its
// default dictionary-attack settings (no test raises them): five wrong
// PINs count down and block one card while another card of the same TPM
// signs, and the TPM's machine-wide lockout counter does not move.
func TestWrongPINsBlockTheCardNotTheTPM(t *testing.T) {
	_, tp := newSim(t)
	a := createCard(t, tp, AlgECCP256)
	b := createCard(t, tp, AlgECCP256)
	maxFail := property(t, tp, tpm2.TPMPTMaxAuthFail)
	before := property(t, tp, tpm2.TPMPTLockoutCounter)
	if maxFail == 0 || maxFail > 5 {
		t.Fatalf("swtpm's TPM_PT_MAX_AUTH_FAIL is %d; this test wants a default that five wrong PINs would exceed", maxFail)
	}
	for want := 4; want >= 1; want-- {
		err := tp.VerifyPIN(testCtx(t), a, []byte(wrongPIN))
		var inc *hwerr.PINIncorrect
		if !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(want) || inc.What != "PIN" {
			t.Fatalf("wrong PIN: %v, want %d tries left", err, want)
		}
		if tr, err := tp.Tries(testCtx(t), a); err != nil || tr.PIN != hwerr.TriesLeft(want) {
			t.Fatalf("Tries = %+v, %v; want %d left", tr, err, want)
		}
	}
	if err := tp.VerifyPIN(testCtx(t), a, []byte(wrongPIN)); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("fifth wrong PIN: %v, want ErrPINBlocked", err)
	}
	if _, err := tp.Sign(testCtx(t), a, []byte(testPIN), make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("right PIN on a blocked card: %v, want ErrPINBlocked", err)
	}
	signAndVerify(t, tp, b, testPIN, cardKey(t, b))
	if after := property(t, tp, tpm2.TPMPTLockoutCounter); after != before {
		t.Fatalf("TPM_PT_LOCKOUT_COUNTER %d -> %d: card PINs reached the machine-wide counter", before, after)
	}
	if tr, err := tp.Tries(testCtx(t), b); err != nil || tr.PIN != hwerr.TriesLeft(5) || tr.PUK != hwerr.TriesLeft(5) || tr != b.FreshTries() {
		t.Fatalf("the other card's counters: %+v, %v; fresh: %+v", tr, err, b.FreshTries())
	}
}

// TestRightPINResetsCount: a right PIN resets the count, in the TPM.
func TestRightPINResetsCount(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	for range 3 {
		_ = tp.VerifyPIN(testCtx(t), c, []byte(wrongPIN))
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); err != nil {
		t.Fatal(err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
		t.Fatalf("after a right PIN: %+v, %v; want 5 left", tr, err)
	}
}

// lossyTPM forwards commands to the TPM, but for one command code it
// drops the TPM's answer and breaks the connection: the daemon died (kill
// -9) between sending a PIN and reading the answer.
type lossyTPM struct {
	transport.TPMCloser
	drop tpm2.TPMCC
}

func (l *lossyTPM) Send(cmd []byte) ([]byte, error) {
	rsp, err := l.TPMCloser.Send(cmd)
	if err == nil && commandCode(cmd) == l.drop {
		_ = l.TPMCloser.Close()
		return nil, errors.New("connection lost before the answer was read")
	}
	return rsp, err
}

// TestLostAnswerCostsATry: when the daemon dies after the TPM received a
// wrong PIN but before it read the answer, the try is spent anyway: the
// TPM counts before it answers, and nothing is left to a later save.
func TestLostAnswerCostsATry(t *testing.T) {
	s, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	tp.Close()
	tc, err := tcp.Open(tcp.Config{CommandAddress: s.Addr(), PlatformAddress: s.PlatformAddr()})
	if err != nil {
		t.Fatal(err)
	}
	lossy, err := open(testCtx(t), &lossyTPM{TPMCloser: tc, drop: tpm2.TPMCCPolicySecret}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := lossy.VerifyPIN(testCtx(t), c, []byte(wrongPIN)); !errors.Is(err, hwerr.ErrUnavailable) {
		t.Fatalf("VerifyPIN over a connection that breaks: %v, want ErrUnavailable", err)
	}
	lossy.Close()
	again := openSim(t, s, Policy{})
	if tr, err := again.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(4) {
		t.Fatalf("after the lost answer: %+v, %v; want 4 tries left", tr, err)
	}
}

// TestDALockoutDoesNotTouchCards: with the TPM in dictionary-attack
// lockout (other software's key guessed wrong at swtpm's default
// threshold), cards still check PINs and sign on their own counters.
func TestDALockoutDoesNotTouchCards(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	lockOut(t, tp)
	st, err := tp.State(testCtx(t))
	if err != nil || !st.Lockout.InLockout || st.Lockout.Counter < st.Lockout.MaxAuthFail {
		t.Fatalf("State = %+v, %v; want the TPM in lockout", st.Lockout, err)
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	var inc *hwerr.PINIncorrect
	if err := tp.VerifyPIN(testCtx(t), c, []byte(wrongPIN)); !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("wrong PIN during TPM lockout: %v, want 4 tries left", err)
	}
}

// lockOut puts the TPM into dictionary-attack lockout the way other
// software would: wrong authValues on a DA-protected sealed object.
func lockOut(t *testing.T, tp *TPM) {
	t.Helper()
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer tp.unlock()
	sealed, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: []byte("right")},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: []byte("secret")}),
		}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type: tpm2.TPMAlgKeyedHash, NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, UserWithAuth: true},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgKeyedHash,
				&tpm2.TPMSKeyedHashParms{Scheme: tpm2.TPMTKeyedHashScheme{Scheme: tpm2.TPMAlgNull}}),
		}),
	}.Execute(tp.tr)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.flushLocked(sealed.ObjectHandle)
	for range 10 {
		_, err := tpm2.Unseal{ItemHandle: tpm2.AuthHandle{Handle: sealed.ObjectHandle, Name: sealed.Name,
			Auth: tpm2.PasswordAuth([]byte("wrong"))}}.Execute(tp.tr)
		if errors.Is(err, tpm2.TPMRCLockout) {
			return
		}
	}
	t.Fatal("the TPM did not lock out")
}

// TestUnblockWithPUK: a blocked PIN is reset with the PUK; wrong PUKs count
// on their own counter.
func TestUnblockWithPUK(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	for range 5 {
		_ = tp.VerifyPIN(testCtx(t), c, []byte(wrongPIN))
	}
	err := tp.UnblockPIN(testCtx(t), c, []byte("00000000"), []byte("65432109"))
	var inc *hwerr.PINIncorrect
	if !errors.As(err, &inc) || inc.What != "PUK" || inc.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("wrong PUK: %v, want PUK with 4 tries left", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("1")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("unblock to a short PIN: %v, want ErrPINPolicy", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("65432109")); err != nil {
		t.Fatalf("UnblockPIN: %v", err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) || tr.PUK != hwerr.TriesLeft(5) {
		t.Fatalf("counters after unblock: %+v, %v", tr, err)
	}
	signAndVerify(t, tp, c, "65432109", cardKey(t, c))
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); !errors.As(err, &inc) {
		t.Fatalf("old PIN after unblock: %v, want wrong PIN", err)
	}
}

// TestPUKBlocks: five wrong PUKs block the PUK for good.
func TestPUKBlocks(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	var err error
	for range 5 {
		err = tp.UnblockPIN(testCtx(t), c, []byte("00000000"), []byte("65432109"))
	}
	if !errors.Is(err, hwerr.ErrPUKBlocked) {
		t.Fatalf("fifth wrong PUK: %v", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("65432109")); !errors.Is(err, hwerr.ErrPUKBlocked) {
		t.Fatalf("right PUK after blocking: %v", err)
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
}

// TestNoPUK: a card created without PUK (optional by default) works and
// cannot be unblocked with one.
func TestNoPUK(t *testing.T) {
	_, tp := newSim(t)
	c, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN)})
	if err != nil || c.PUK != nil {
		t.Fatalf("CreateCard without PUK: %+v, %v", c, err)
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("65432109")); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Fatalf("UnblockPIN without PUK: %v", err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PUK.Known() || tr != c.FreshTries() {
		t.Fatalf("Tries = %+v, %v; want no PUK counter, as FreshTries %+v", tr, err, c.FreshTries())
	}
	_, must := newSim(t)
	must.policy.RequirePUK = true
	if _, _, err := must.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN)}); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("RequirePUK without PUK: %v", err)
	}
}

// TestChangePIN: a PIN change keeps key, certificate and record; the old
// PIN opens nothing, not even through a copy of the record made before.
func TestChangePIN(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	csr, err := tp.CSR(testCtx(t), c, []byte(testPIN), pkix.Name{CommonName: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ImportCertificate(c, issue(t, csr)); err != nil {
		t.Fatal(err)
	}
	before := copyCard(t, c)
	if err := tp.ChangePIN(testCtx(t), c, []byte(testPIN), []byte("abc")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("change to a short PIN: %v", err)
	}
	var inc *hwerr.PINIncorrect
	if err := tp.ChangePIN(testCtx(t), c, []byte(wrongPIN), []byte("new-pin-1")); !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("change with a wrong old PIN: %v, want 4 tries left", err)
	}
	if err := tp.ChangePIN(testCtx(t), c, []byte(testPIN), []byte("new-pin-1")); err != nil {
		t.Fatalf("ChangePIN: %v", err)
	}
	if !reflect.DeepEqual(before, copyCard(t, c)) {
		t.Fatal("a PIN change touched the card record")
	}
	cert, _ := x509.ParseCertificate(c.Certificate)
	signAndVerify(t, tp, c, "new-pin-1", cert.PublicKey)
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); !errors.As(err, &inc) {
		t.Fatalf("old PIN after change: %v", err)
	}
	if _, err := tp.Sign(testCtx(t), before, []byte(testPIN), make([]byte, 32), crypto.SHA256); !errors.As(err, &inc) {
		t.Fatalf("old record copy with the old PIN: %v, want wrong PIN", err)
	}
	// A blocked PIN cannot be changed, not even with the right old PIN.
	for range 5 {
		_ = tp.VerifyPIN(testCtx(t), c, []byte(wrongPIN))
	}
	if err := tp.ChangePIN(testCtx(t), c, []byte("new-pin-1"), []byte("new-pin-2")); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("change on a blocked card: %v, want ErrPINBlocked", err)
	}
}

// TestOtherDeviceRefuses: a card record taken to a second TPM does not
// load there, even with its metadata forged to point at that TPM's card.
func TestOtherDeviceRefuses(t *testing.T) {
	_, tp1 := newSim(t)
	_, tp2 := newSim(t)
	if tp1.DeviceID() == tp2.DeviceID() {
		t.Fatal("two swtpm instances share a device id")
	}
	c1 := createCard(t, tp1, AlgECCP256)
	if err := tp2.CheckCard(testCtx(t), c1); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("CheckCard on another TPM: %v", err)
	}
	if _, err := tp2.Sign(testCtx(t), c1, []byte(testPIN), make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("Sign on another TPM: %v", err)
	}
	// Forge the record: device id and PIN index of a card that exists on
	// tp2. The key blob still fails TPM2_Load's integrity check there.
	c2 := createCard(t, tp2, AlgECCP256)
	forged := copyCard(t, c1)
	forged.DeviceID, forged.PIN, forged.PUK = c2.DeviceID, c2.PIN, c2.PUK
	if err := tp2.CheckCard(testCtx(t), forged); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("TPM2_Load of a blob from another TPM: %v, want ErrWrongDevice", err)
	}
	if _, err := tp2.Sign(testCtx(t), forged, []byte(testPIN), make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("Sign with a forged record on another TPM: %v, want ErrWrongDevice", err)
	}
	if err := tp1.CheckCard(testCtx(t), c1); err != nil {
		t.Fatalf("CheckCard on its own TPM: %v", err)
	}
}

// TestDestroyCard: after deletion a retained copy of the record is useless,
// with the right PIN, even when a new card takes the NV handles and the
// copy is edited to name the new card's PIN index.
func TestDestroyCard(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	kept := copyCard(t, c)
	if err := tp.DestroyCard(testCtx(t), c); err != nil {
		t.Fatalf("DestroyCard: %v", err)
	}
	if err := tp.CheckCard(testCtx(t), kept); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("CheckCard after delete: %v, want ErrRemoved", err)
	}
	if _, err := tp.Sign(testCtx(t), kept, []byte(testPIN), make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Sign after delete: %v, want ErrRemoved", err)
	}
	again := createCard(t, tp, AlgECCP256)
	if again.PIN.Handle != kept.PIN.Handle {
		t.Fatalf("new card at %#x, expected the freed handle %#x", again.PIN.Handle, kept.PIN.Handle)
	}
	if bytes.Equal(again.PIN.Name, kept.PIN.Name) {
		t.Fatal("a new card's PIN index has the deleted card's name")
	}
	// Pointed at the new card's PIN index (whose PIN is known), the old
	// key still refuses: its policy names the deleted index.
	kept.PIN, kept.PUK, kept.Salt = again.PIN, again.PUK, again.Salt
	if _, err := tp.Sign(testCtx(t), kept, []byte(testPIN), make([]byte, 32), crypto.SHA256); err == nil {
		t.Fatal("a deleted card's key signed with another card's PIN index")
	}
	if err := tp.DestroyCard(testCtx(t), c); err != nil {
		t.Fatalf("second DestroyCard: %v", err)
	}
	if err := tp.CheckCard(testCtx(t), again); err != nil {
		t.Fatalf("deleting a card twice hurt another card: %v", err)
	}
}

// TestPolicy: PIN rules and the per-device limit.
func TestPolicy(t *testing.T) {
	_, tp := newSim(t)
	for _, tc := range []struct{ pin, puk, alg string }{
		{"1234567", testPUK, ""},
		{testPIN, "123", ""},
		{strings.Repeat("1", 128), testPUK, ""},
		{"1234567\xff", testPUK, ""},
	} {
		_, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(tc.pin), PUK: []byte(tc.puk)})
		if !errors.Is(err, hwerr.ErrPINPolicy) {
			t.Errorf("CreateCard(pin len %d, puk len %d) = %v, want ErrPINPolicy", len(tc.pin), len(tc.puk), err)
		}
		if err != nil && (strings.Contains(err.Error(), tc.pin) || strings.Contains(err.Error(), tc.puk)) {
			t.Errorf("error %q echoes the secret", err)
		}
	}
	_, _, err := tp.CreateCard(testCtx(t), CreateOptions{PIN: []byte(testPIN), PUK: []byte(testPUK), Algorithm: "dsa"})
	if !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("unknown algorithm: %v", err)
	}
	if err := tp.CanCreate(9); err != nil {
		t.Errorf("CanCreate(9) = %v", err)
	}
	if err := tp.CanCreate(10); !errors.Is(err, hwerr.ErrLimit) {
		t.Errorf("CanCreate(10) = %v, want ErrLimit", err)
	}
	strict := openSim(t, testenv.SWTPM(t), Policy{MinPINLength: 10, MaxCards: 2})
	if err := strict.CanCreate(2); !errors.Is(err, hwerr.ErrLimit) {
		t.Errorf("MaxCards 2: CanCreate(2) = %v", err)
	}
	if err := strict.Policy().CheckPIN("PIN", []byte("123456789")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Errorf("MinPINLength 10 accepted 9: %v", err)
	}
}

// TestImportCertificateMismatch: a certificate for another key is refused.
func TestImportCertificateMismatch(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &other.PublicKey, other)
	if err != nil {
		t.Fatal(err)
	}
	err = ImportCertificate(c, der)
	if !errors.Is(err, hwerr.ErrInvalidInput) || !strings.Contains(err.Error(), "does not match the card") {
		t.Fatalf("ImportCertificate(other key) = %v", err)
	}
	if err := ImportCertificate(c, []byte("junk")); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Fatalf("ImportCertificate(junk) = %v", err)
	}
	if c.Certificate != nil {
		t.Fatal("refused certificate was stored")
	}
}

// TestPruneOrphans: the NV indices of cards the daemon never stored are
// deleted; stored cards keep working.
func TestPruneOrphans(t *testing.T) {
	_, tp := newSim(t)
	kept := createCard(t, tp, AlgECCP256)
	orphan := createCard(t, tp, AlgECCP256)
	_, other := newSim(t)
	foreign := createCard(t, other, AlgECCP256)
	n, err := tp.PruneOrphans(testCtx(t), []*Card{kept, foreign})
	if err != nil || n != 2 {
		t.Fatalf("PruneOrphans = %d, %v; want the orphan's 2 indices deleted", n, err)
	}
	if err := tp.CheckCard(testCtx(t), orphan); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("orphan after pruning: %v", err)
	}
	signAndVerify(t, tp, kept, testPIN, cardKey(t, kept))
	if n, err := tp.PruneOrphans(testCtx(t), []*Card{kept}); err != nil || n != 0 {
		t.Fatalf("second PruneOrphans = %d, %v; want 0", n, err)
	}
}
