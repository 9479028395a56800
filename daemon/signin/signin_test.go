package signin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// testCA is a certificate authority for trust tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, cn string) testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return testCA{cert, key}
}

type leafOpts struct {
	cn, email, upn      string
	notBefore, notAfter time.Time
	serial              int64
	keyUsage            x509.KeyUsage
	eku                 []x509.ExtKeyUsage
}

func (ca testCA) issue(t *testing.T, o leafOpts) *x509.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(time.Hour)
	}
	if o.serial == 0 {
		o.serial = 42
	}
	if o.keyUsage == 0 {
		o.keyUsage = x509.KeyUsageDigitalSignature
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(o.serial),
		Subject:      pkix.Name{CommonName: o.cn},
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     o.keyUsage,
		ExtKeyUsage:  o.eku,
	}
	if o.email != "" {
		tmpl.EmailAddresses = []string{o.email}
	}
	if o.upn != "" {
		// ExtraExtensions replaces the SAN Go would write for
		// EmailAddresses, so the e-mail address goes in here too.
		san, err := certutil.MarshalSAN([]string{o.upn}, tmpl.EmailAddresses, nil)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.ExtraExtensions = []pkix.Extension{{Id: certutil.OIDSubjectAltName, Value: san}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

func writePEM(t *testing.T, typ string, der ...[]byte) string {
	t.Helper()
	var out []byte
	for _, d := range der {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: d})...)
	}
	p := filepath.Join(t.TempDir(), "f.pem")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantError fails the test unless err is (or wraps) an error of type E.
func wantError[E error](t *testing.T, err error) E {
	t.Helper()
	e, ok := errors.AsType[E](err)
	if !ok {
		var zero E
		t.Fatalf("error = %v, want a %T", err, zero)
	}
	return e
}

func TestTrustChecks(t *testing.T) {
	ca, other := newTestCA(t, "Test CA"), newTestCA(t, "Other CA")
	revoked := ca.issue(t, leafOpts{cn: "alice", serial: 7})
	crl, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                time.Now().Add(-time.Minute),
		NextUpdate:                time.Now().Add(time.Hour),
		RevokedCertificateEntries: []x509.RevocationListEntry{{SerialNumber: big.NewInt(7), RevocationTime: time.Now().Add(-time.Minute)}},
	}, ca.cert, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := LoadTrust(config.SignIn{TrustAnchors: writePEM(t, "CERTIFICATE", ca.cert.Raw), CRLFiles: []string{writePEM(t, "X509 CRL", crl)}})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := tr.Check(ca.issue(t, leafOpts{cn: "alice"}), now); err != nil {
		t.Fatalf("valid certificate refused: %v", err)
	}
	if err := tr.Check(ca.issue(t, leafOpts{cn: "alice", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}), now); err != nil {
		t.Fatalf("client-auth certificate refused: %v", err)
	}
	for name, cert := range map[string]*x509.Certificate{
		"expired":     ca.issue(t, leafOpts{cn: "alice", notBefore: now.Add(-48 * time.Hour), notAfter: now.Add(-24 * time.Hour)}),
		"not yet":     ca.issue(t, leafOpts{cn: "alice", notBefore: now.Add(time.Hour), notAfter: now.Add(2 * time.Hour)}),
		"wrong CA":    other.issue(t, leafOpts{cn: "alice"}),
		"key usage":   ca.issue(t, leafOpts{cn: "alice", keyUsage: x509.KeyUsageKeyEncipherment}),
		"eku":         ca.issue(t, leafOpts{cn: "alice", eku: []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning}}),
		"revoked":     revoked,
		"self-signed": newTestCA(t, "alice").cert,
	} {
		err := tr.Check(cert, now)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		wantError[*CertificateError](t, err)
	}
	var none *Trust
	if err := none.Check(other.issue(t, leafOpts{cn: "x"}), now); err != nil {
		t.Errorf("no trust anchors configured must accept any certificate: %v", err)
	}
}

// uidAccounts is an account database of names and uids.
type uidAccounts map[string]uint32

func (a uidAccounts) UserName(uid uint32) (string, bool) {
	for n, u := range a {
		if u == uid {
			return n, true
		}
	}
	return "", false
}
func (a uidAccounts) UserExists(name string) bool { _, ok := a[name]; return ok }
func (a uidAccounts) UserID(name string) (uint32, bool) {
	uid, ok := a[name]
	return uid, ok
}
func (a uidAccounts) GroupID(string) (uint32, bool) { return 0, false }

func TestMapIdentity(t *testing.T) {
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "r.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	accounts := uidAccounts{"alice": 1000, "bob": 1001, "work": 1002}
	ca := newTestCA(t, "CA")
	cert := ca.issue(t, leafOpts{cn: "Alice Example", email: "alice@example.org", upn: "alice@CORP.EXAMPLE"})
	if got, _ := certutil.UPNs(cert); len(got) != 1 || got[0] != "alice@CORP.EXAMPLE" {
		t.Fatalf("UPNs = %q", got)
	}
	for _, tc := range []struct {
		rules []string
		user  string
		ok    bool
	}{
		{nil, "bob", true},
		{[]string{"upn"}, "alice", true},
		{[]string{"upn"}, "bob", false},
		{[]string{"email"}, "alice", true},
		{[]string{"cn"}, "alice", false}, // CN is "Alice Example"
		{[]string{"cn", "email"}, "alice", true},
		{[]string{"link"}, "work", false},
	} {
		err := mapIdentity(ctx, st, accounts, tc.rules, cert, tc.user)
		if tc.ok && err != nil {
			t.Errorf("rules %v user %s: %v", tc.rules, tc.user, err)
		}
		if !tc.ok {
			wantError[*MismatchError](t, err)
		}
	}
	// R11: link the card's UPN to another account; one account may hold
	// several identities.
	if err := st.AddLink(ctx, "work", accounts["work"], "upn:alice@CORP.EXAMPLE", "root"); err != nil {
		t.Fatal(err)
	}
	if err := mapIdentity(ctx, st, accounts, []string{"link"}, cert, "work"); err != nil {
		t.Errorf("linked identity refused: %v", err)
	}
	wantError[*MismatchError](t, mapIdentity(ctx, st, accounts, []string{"link"}, cert, "alice"))
	// The account is deleted and another created under the same name: it
	// does not inherit the link.
	accounts["work"] = 1003
	wantError[*MismatchError](t, mapIdentity(ctx, st, accounts, []string{"link"}, cert, "work"))
}

// TestFailureLimiter: failures count per authenticator, target user and
// secret; a success resets; failures the device counted itself (tries left
// reported, or blocked) never make the limiter answer first.
func TestFailureLimiter(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	alice := Key{"piv-1", "alice", SecretPIN}
	mismatch := &MismatchError{Reason: "not alice's"}
	for range 3 {
		if err := l.Allow(alice); err != nil {
			t.Fatal(err)
		}
		l.Record(alice, mismatch)
	}
	wantError[*TooManyAttemptsError](t, l.Allow(alice))
	for _, other := range []Key{{"piv-1", "bob", SecretPIN}, {"piv-2", "alice", SecretPIN}, {"piv-1", "alice", SecretPUK}} {
		if err := l.Allow(other); err != nil {
			t.Errorf("%+v is limited by alice's PIN failures on piv-1: %v", other, err)
		}
	}
	now = now.Add(61 * time.Second)
	if err := l.Allow(alice); err != nil {
		t.Fatalf("failures outlived the window: %v", err)
	}
	l.Record(alice, mismatch)
	l.Record(alice, errors.New("the reader went away")) // not a guess: not counted
	l.Record(alice, nil)
	if len(l.fails) != 0 {
		t.Fatal("a success kept failures")
	}

	// The device's own counter answers first.
	card := Key{"piv-3", "alice", SecretPIN}
	for left := 8; left > 0; left-- {
		if err := l.Allow(card); err != nil {
			t.Fatalf("refused with %d tries left on the card: %v", left, err)
		}
		l.Record(card, &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(left - 1)})
	}
	if err := l.Allow(card); err != nil {
		t.Fatalf("refused a blocked card, which answers pin_blocked itself: %v", err)
	}
	l.Record(card, hwerr.ErrPINBlocked)
	if err := l.Allow(card); err != nil {
		t.Fatalf("refused after pin_blocked: %v", err)
	}
	// A device that does not say how many tries are left is limited.
	token := Key{"p11-1", "alice", SecretPIN}
	for range 3 {
		l.Record(token, &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(-1)})
	}
	wantError[*TooManyAttemptsError](t, l.Allow(token))
}

func TestSessionsEndAndZeroPIN(t *testing.T) {
	ended := make(chan string, 4)
	tab := NewSessions(func(s Session, reason string) { ended <- s.ID + " " + reason })
	pin := []byte("123456")
	s, err := tab.Start("alice", "piv-1", time.Hour, pin, false)
	if err != nil {
		t.Fatal(err)
	}
	clear(pin) // the table keeps its own copy
	if got := tab.CachedPIN("alice", "piv-1"); string(got) != "123456" {
		t.Fatalf("cached PIN = %q", got)
	}
	if tab.CachedPIN("bob", "piv-1") != nil {
		t.Fatal("another user's session PIN was handed out")
	}
	tab.mu.Lock()
	held := tab.byID[s.ID].pin
	tab.mu.Unlock()
	if !tab.End(s.ID, EndSignOut) || tab.End(s.ID, EndSignOut) {
		t.Fatal("end must succeed once")
	}
	if got := <-ended; got != s.ID+" "+EndSignOut {
		t.Fatalf("ended %q", got)
	}
	for _, b := range held {
		if b != 0 {
			t.Fatal("cached PIN not zeroed on sign-out")
		}
	}
	short, err := tab.Start("alice", "piv-1", 10*time.Millisecond, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ended:
		if got != short.ID+" "+EndExpired {
			t.Fatalf("ended %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("session did not expire")
	}
}

// TestFailureLimiterForgetsExpiredKeys: keys nobody touches again do not
// pile up.
func TestFailureLimiterForgetsExpiredKeys(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(3, time.Minute)
	l.now = func() time.Time { return now }
	mismatch := &MismatchError{Reason: "no"}
	for i := range 2 * sweepAt {
		if i == sweepAt {
			now = now.Add(2 * time.Minute)
		}
		l.Record(Key{fmt.Sprint("piv-", i), "alice", SecretPIN}, mismatch)
	}
	if len(l.fails) > sweepAt {
		t.Fatalf("%d keys kept, want at most %d", len(l.fails), sweepAt)
	}
}

// TestLoadTrustErrors: a trust configuration that cannot be read is refused
// at start with the setting named; none configured means no policy.
func TestLoadTrustErrors(t *testing.T) {
	if tr, err := LoadTrust(config.SignIn{}); tr != nil || err != nil {
		t.Fatalf("no trust anchors: %v, %v", tr, err)
	}
	ca := writePEM(t, "CERTIFICATE", newTestCA(t, "CA").cert.Raw)
	for name, cfg := range map[string]config.SignIn{
		"signin.trust_anchors": {TrustAnchors: filepath.Join(t.TempDir(), "missing.pem")},
		"holds no PEM":         {TrustAnchors: writePEM(t, "CERTIFICATE")},
		"signin.crl_files":     {TrustAnchors: ca, CRLFiles: []string{filepath.Join(t.TempDir(), "missing.crl")}},
		"crl_files: ":          {TrustAnchors: ca, CRLFiles: []string{writePEM(t, "X509 CRL", []byte("not a CRL"))}},
	} {
		if _, err := LoadTrust(cfg); err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%+v: %v, want an error naming %q", cfg, err, name)
		}
	}
}
