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
	"regexp"
	"strings"
	"testing"
	"time"

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
			var st store
			csr, err := tp.CSR(testCtx(t), c, []byte(testPIN), st.save, pkix.Name{CommonName: "alice"}, "alice@example.com", "host.example")
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

			record := st.last(t) // the card as the daemon stored it
			record.Certificate = c.Certificate
			tp.Close()
			s.Restart(t)
			tp2 := openSim(t, s, Policy{})
			if tp2.DeviceID() != c.DeviceID {
				t.Fatal("device identity changed across restart")
			}
			if err := tp2.CheckCard(testCtx(t), &record); err != nil {
				t.Fatalf("CheckCard after restart: %v", err)
			}
			signAndVerify(t, tp2, &record, testPIN, cert.PublicKey)
		})
	}
}

// TestSignSchemes checks the hashes and RSA schemes, and that bad input is
// refused before the PIN is tried.
func TestSignSchemes(t *testing.T) {
	_, tp := newSim(t)
	ecc := createCard(t, tp, AlgECCP384)
	rsaCard := createCard(t, tp, AlgRSA2048)
	var st store
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
		sig, err := tp.Sign(testCtx(t), tc.card, []byte(testPIN), st.save, tc.digest, tc.opts)
		if err != nil {
			t.Fatalf("%s %v: %v", tc.card.Algorithm, tc.opts, err)
		}
		if err := verify(cardKey(t, tc.card), tc.digest, sig, tc.opts); err != nil {
			t.Fatalf("%s %v: %v", tc.card.Algorithm, tc.opts, err)
		}
	}
	before := ecc.PINTriesLeft
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
		_, err := tp.Sign(testCtx(t), bad.card, []byte("000000"), st.save, bad.digest, bad.opts)
		if !errors.Is(err, bad.want) {
			t.Errorf("Sign(%v) = %v, want %v", bad.opts, err, bad.want)
		}
	}
	if ecc.PINTriesLeft != before {
		t.Fatalf("refused input cost a PIN try: %d -> %d", before, ecc.PINTriesLeft)
	}
}

// TestWrongPINCountsDownAndBlocks checks the per-card counter, and that it
// is saved before the TPM sees the PIN.
func TestWrongPINCountsDownAndBlocks(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	var st store
	for want := 4; want >= 1; want-- {
		err := tp.VerifyPIN(testCtx(t), c, []byte("000000"), st.save)
		var inc *hwerr.PINIncorrect
		if !errors.As(err, &inc) || inc.RetriesLeft != want || inc.What != "PIN" {
			t.Fatalf("wrong PIN: %v, want %d tries left", err, want)
		}
		if got := st.last(t).PINTriesLeft; got != want {
			t.Fatalf("stored counter %d, want %d", got, want)
		}
	}
	if err := tp.VerifyPIN(testCtx(t), c, []byte("000000"), st.save); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("fifth wrong PIN: %v, want ErrPINBlocked", err)
	}
	saves := len(st.saves)
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN), st.save); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("right PIN on a blocked card: %v, want ErrPINBlocked", err)
	}
	if len(st.saves) != saves || c.PINTriesLeft != 0 {
		t.Fatal("a blocked card was tried")
	}
}

// TestCounterSavedBeforeTry: when the store cannot save, the PIN is not
// tried at all (a crash between try and save cannot give free tries).
func TestCounterSavedBeforeTry(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	st := store{fail: errors.New("disk full")}
	err := tp.VerifyPIN(testCtx(t), c, []byte("000000"), st.save)
	var inc *hwerr.PINIncorrect
	if err == nil || errors.As(err, &inc) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("VerifyPIN with a failing store: %v, want the store's error", err)
	}
	if c.PINTriesLeft != c.PINTries {
		t.Fatalf("counter %d after a try that never happened", c.PINTriesLeft)
	}
	// A right PIN resets the counter after a wrong one.
	st.fail = nil
	_ = tp.VerifyPIN(testCtx(t), c, []byte("000000"), st.save)
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN), st.save); err != nil {
		t.Fatal(err)
	}
	if st.saves[len(st.saves)-2].PINTriesLeft != 3 || st.last(t).PINTriesLeft != 5 {
		t.Fatalf("saves: before try %d, after success %d; want 3 and 5",
			st.saves[len(st.saves)-2].PINTriesLeft, st.last(t).PINTriesLeft)
	}
}

// TestUnblockWithPUK: a blocked PIN is reset with the PUK; wrong PUKs count
// on their own counter.
func TestUnblockWithPUK(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	var st store
	for range 5 {
		_ = tp.VerifyPIN(testCtx(t), c, []byte("000000"), st.save)
	}
	err := tp.UnblockPIN(testCtx(t), c, []byte("00000000"), []byte("654321"), st.save)
	var inc *hwerr.PINIncorrect
	if !errors.As(err, &inc) || inc.What != "PUK" || inc.RetriesLeft != 4 {
		t.Fatalf("wrong PUK: %v, want PUK with 4 tries left", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("1"), st.save); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("unblock to a short PIN: %v, want ErrPINPolicy", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("654321"), st.save); err != nil {
		t.Fatalf("UnblockPIN: %v", err)
	}
	if c.PINTriesLeft != 5 || c.PUKTriesLeft != 5 || st.last(t).PINTriesLeft != 5 {
		t.Fatalf("counters after unblock: PIN %d PUK %d", c.PINTriesLeft, c.PUKTriesLeft)
	}
	signAndVerify(t, tp, c, "654321", cardKey(t, c))
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN), st.save); !errors.As(err, &inc) {
		t.Fatalf("old PIN after unblock: %v, want wrong PIN", err)
	}
}

// TestPUKBlocks: five wrong PUKs block the PUK for good.
func TestPUKBlocks(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	var st store
	var err error
	for range 5 {
		err = tp.UnblockPIN(testCtx(t), c, []byte("00000000"), []byte("654321"), st.save)
	}
	if !errors.Is(err, hwerr.ErrPUKBlocked) {
		t.Fatalf("fifth wrong PUK: %v", err)
	}
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte("654321"), st.save); !errors.Is(err, hwerr.ErrPUKBlocked) {
		t.Fatalf("right PUK after blocking: %v", err)
	}
}

// TestChangePINKeepsKeyAndCertificate: a PIN change re-seals K only.
func TestChangePINKeepsKeyAndCertificate(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	var st store
	csr, err := tp.CSR(testCtx(t), c, []byte(testPIN), st.save, pkix.Name{CommonName: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	if err := ImportCertificate(c, issue(t, csr)); err != nil {
		t.Fatal(err)
	}
	before := *c
	if err := tp.ChangePIN(testCtx(t), c, []byte(testPIN), []byte("abc"), st.save); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Fatalf("change to a short PIN: %v", err)
	}
	if err := tp.ChangePIN(testCtx(t), c, []byte(testPIN), []byte("new-pin-1"), st.save); err != nil {
		t.Fatalf("ChangePIN: %v", err)
	}
	if !bytes.Equal(before.KeyPrivate, c.KeyPrivate) || !bytes.Equal(before.PublicKey, c.PublicKey) ||
		!bytes.Equal(before.Certificate, c.Certificate) {
		t.Fatal("PIN change touched the key or the certificate")
	}
	if bytes.Equal(before.PINSealed.Private, c.PINSealed.Private) || !bytes.Equal(before.PUKSealed.Private, c.PUKSealed.Private) {
		t.Fatal("PIN change did not replace exactly the PIN-sealed secret")
	}
	if !bytes.Equal(st.last(t).PINSealed.Private, c.PINSealed.Private) {
		t.Fatal("new PIN blob not saved")
	}
	cert, _ := x509.ParseCertificate(c.Certificate)
	signAndVerify(t, tp, c, "new-pin-1", cert.PublicKey)
	var inc *hwerr.PINIncorrect
	if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN), st.save); !errors.As(err, &inc) {
		t.Fatalf("old PIN after change: %v", err)
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
	var st store
	if err := tp2.CheckCard(testCtx(t), c1); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("CheckCard on another TPM: %v", err)
	}
	if _, err := tp2.Sign(testCtx(t), c1, []byte(testPIN), st.save, make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("Sign on another TPM: %v", err)
	}
	// Forge the record: device id and root of a card that exists on tp2.
	c2 := createCard(t, tp2, AlgECCP256)
	forged := *c1
	forged.DeviceID, forged.RootHandle, forged.RootName = c2.DeviceID, c2.RootHandle, c2.RootName
	if err := tp2.CheckCard(testCtx(t), &forged); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("TPM2_Load of a blob from another TPM: %v, want ErrWrongDevice", err)
	}
	if err := tp1.CheckCard(testCtx(t), c1); err != nil {
		t.Fatalf("CheckCard on its own TPM: %v", err)
	}
}

// TestDestroyCard: after deletion a retained copy of the record is useless,
// with the right PIN, even when a new card takes the handle.
func TestDestroyCard(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	kept := *c
	if err := tp.DestroyCard(testCtx(t), c); err != nil {
		t.Fatalf("DestroyCard: %v", err)
	}
	var st store
	if err := tp.CheckCard(testCtx(t), &kept); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("CheckCard after delete: %v, want ErrRemoved", err)
	}
	if _, err := tp.Sign(testCtx(t), &kept, []byte(testPIN), st.save, make([]byte, 32), crypto.SHA256); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("Sign after delete: %v, want ErrRemoved", err)
	}
	again := createCard(t, tp, AlgECCP256)
	if again.RootHandle != kept.RootHandle {
		t.Fatalf("new card at %#x, expected the freed handle %#x", again.RootHandle, kept.RootHandle)
	}
	// Even pointed at the new root, the old blobs fail the integrity check.
	kept.RootName = again.RootName
	if err := tp.VerifyPIN(testCtx(t), &kept, []byte(testPIN), st.save); !errors.Is(err, hwerr.ErrWrongDevice) {
		t.Fatalf("old blobs under the new root: %v", err)
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
		{"12345", testPUK, ""},
		{testPIN, "123", ""},
		{strings.Repeat("1", 128), testPUK, ""},
		{"12345\xff", testPUK, ""},
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
	strict := openSim(t, testenv.SWTPM(t), Policy{MinPINLength: 8, MaxCards: 2})
	if err := strict.CanCreate(2); !errors.Is(err, hwerr.ErrLimit) {
		t.Errorf("MaxCards 2: CanCreate(2) = %v", err)
	}
	if err := strict.Policy().CheckPIN("PIN", []byte("1234567")); !errors.Is(err, hwerr.ErrPINPolicy) {
		t.Errorf("MinPINLength 8 accepted 7: %v", err)
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

// TestPruneOrphans: storage keys of cards the daemon never stored are
// destroyed; stored cards keep working.
func TestPruneOrphans(t *testing.T) {
	_, tp := newSim(t)
	kept := createCard(t, tp, AlgECCP256)
	orphan := createCard(t, tp, AlgECCP256)
	_, other := newSim(t)
	foreign := createCard(t, other, AlgECCP256)
	n, err := tp.PruneOrphans(testCtx(t), []*Card{kept, foreign})
	if err != nil || n != 1 {
		t.Fatalf("PruneOrphans = %d, %v; want 1 destroyed", n, err)
	}
	if err := tp.CheckCard(testCtx(t), orphan); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("orphan after pruning: %v", err)
	}
	signAndVerify(t, tp, kept, testPIN, cardKey(t, kept))
	if n, err := tp.PruneOrphans(testCtx(t), []*Card{kept}); err != nil || n != 0 {
		t.Fatalf("second PruneOrphans = %d, %v; want 0", n, err)
	}
}
