package signin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

// present is the set of devices plugged in, by authenticator id.
type present map[string]device.Device

func (p present) Device(id string) (device.Device, error) {
	if d, ok := p[id]; ok {
		return d, nil
	}
	return nil, hwerr.ErrNotFound
}

func (p present) FirstOfKind(kind device.Kind) (device.Device, error) {
	for _, d := range p {
		if d.Info().Kind == kind {
			return d, nil
		}
	}
	return nil, hwerr.ErrNotFound
}

// card is a keyDevice listed under its own id.
type card struct {
	*keyDevice
	id string
}

func (c card) Info() device.Info {
	a := c.keyDevice.Info()
	a.ID, a.Kind = c.id, device.KindSmartcard
	return a
}

// serviceFixture is a Service over a real registry with fake devices.
type serviceFixture struct {
	svc     *Service
	st      store.Store
	devices present
	cards   map[string]card
}

// newServiceFixture registers cards piv-1 (oldest), piv-2 (default) and
// piv-3 to alice, and piv-9 to bob; all are present.
func newServiceFixture(t *testing.T) *serviceFixture {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "r.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &serviceFixture{st: st, devices: present{}, cards: map[string]card{}}
	ctx := context.Background()
	for _, r := range []struct{ id, user string }{{"piv-1", "alice"}, {"piv-2", "alice"}, {"piv-3", "alice"}, {"piv-9", "bob"}} {
		c := card{newKeyDevice(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))), r.id}
		f.cards[r.id], f.devices[r.id] = c, c
		der := must(x509.MarshalPKIXPublicKey(c.signer.Public()))
		reg, err := st.AddRegistration(ctx, store.Registration{User: r.user, AuthenticatorID: r.id, Kind: string(device.KindSmartcard),
			Backend: "piv", KeyID: "9a", PublicKey: der}, 5, false)
		if err != nil {
			t.Fatal(err)
		}
		if r.id == "piv-2" {
			if err := st.SetDefault(ctx, "alice", reg.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	f.svc = &Service{
		Registry: st,
		Devices:  f.devices,
		Accounts: uidAccounts{"alice": 1000, "bob": 1001},
		Failures: NewLimiter(3, time.Minute),
		Sessions: NewSessions(func(Session, string) {}),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),

		SessionLifetime: time.Hour,
		OpenTimeout:     time.Minute,
		Policy:          config.Defaults().Policy,
		PINBlocks:       &PINBlocks{},
	}
	return f
}

// tries counts the tries that reached a card.
func (f *serviceFixture) tries() int {
	n := 0
	for _, c := range f.cards {
		n += len(c.signed)
	}
	return n
}

func (f *serviceFixture) signIn(t *testing.T, user, named, pin string) (string, error) {
	t.Helper()
	res, err := f.svc.SignIn(context.Background(), user, named, []byte(pin))
	if err != nil {
		return "", err
	}
	if res.Device.Info().ID != res.Registration.AuthenticatorID {
		t.Fatalf("signed in with %s for registration of %s", res.Device.Info().ID, res.Registration.AuthenticatorID)
	}
	return res.Registration.AuthenticatorID, nil
}

// TestSignInChoosesRegistration: the authenticator named, else the one
// signed in with last, else the default, else the oldest present one.
func TestSignInChoosesRegistration(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		named, last string
		absent      []string
		want        string
	}{
		{"", "", nil, "piv-2"},
		{"", "", []string{"piv-2"}, "piv-1"},
		{"", "", []string{"piv-1", "piv-2"}, "piv-3"},
		{"", "piv-3", nil, "piv-3"},
		{"", "piv-3", []string{"piv-3"}, "piv-2"},
		{"piv-1", "piv-3", nil, "piv-1"},
	} {
		devs := present{}
		for id, c := range f.cards {
			if !slices.Contains(tc.absent, id) {
				devs[id] = c
			}
		}
		f.svc.Devices = devs
		if err := f.st.Forget(ctx, "alice"); err != nil {
			t.Fatal(err)
		}
		if tc.last != "" {
			if err := f.st.Remember(ctx, "alice", RememberLastAuthenticator, tc.last); err != nil {
				t.Fatal(err)
			}
		}
		got, err := f.signIn(t, "alice", tc.named, "123456")
		if err != nil || got != tc.want {
			t.Errorf("named %q, last %q, absent %v: signed in with %q, %v, want %q", tc.named, tc.last, tc.absent, got, err, tc.want)
		}
	}
	if got := f.svc.LastAuthenticator(ctx, "alice"); got != "piv-3" {
		t.Errorf("LastAuthenticator = %q, want what was remembered", got)
	}

	f.svc.Devices = present{"piv-9": f.cards["piv-9"]}
	if _, err := f.signIn(t, "alice", "", "123456"); !errors.Is(err, ErrNoAuthenticator) {
		t.Errorf("none of alice's cards present: %v, want ErrNoAuthenticator", err)
	}
	if _, err := f.signIn(t, "alice", "piv-7", "123456"); !errors.Is(err, ErrNoAuthenticator) {
		t.Errorf("named card absent: %v, want ErrNoAuthenticator", err)
	}
	if _, err := f.signIn(t, "carol", "", "123456"); wantError[*NotRegisteredError](t, err).User != "carol" {
		t.Errorf("carol has no registration: %v", err)
	}
}

// TestSignInNamingAnotherUsersCard: naming a present card that is not the
// user's spends no try, and counts towards the limit for that card.
func TestSignInNamingAnotherUsersCard(t *testing.T) {
	f := newServiceFixture(t)
	for range 3 {
		_, err := f.signIn(t, "alice", "piv-9", "123456")
		if e := wantError[*NotRegisteredError](t, err); e.Authenticator != "piv-9" {
			t.Fatalf("NotRegisteredError %+v", e)
		}
	}
	_, err := f.signIn(t, "alice", "piv-9", "123456")
	wantError[*TooManyAttemptsError](t, err)
	if n := len(f.cards["piv-9"].signed); n != 0 || f.tries() != 0 {
		t.Errorf("bob's card signed %d times, %d tries", n, f.tries())
	}
	if _, err := f.signIn(t, "bob", "piv-9", "123456"); err != nil {
		t.Errorf("bob with his own card after alice's attempts: %v", err)
	}
}

// TestSignInRefusals: the policy hooks, a wrong PIN, an impostor, and
// certificate and mapping policy on a card without a certificate, with
// what reaches the device in each case.
func TestSignInRefusals(t *testing.T) {
	f := newServiceFixture(t)
	piv2 := f.cards["piv-2"]

	defaults := f.svc.Policy
	f.svc.Policy.RequiredCount = 4
	_, err := f.signIn(t, "alice", "", "123456")
	if e := wantError[*RegistrationRequiredError](t, err); e.User != "alice" || e.Registered != 3 || e.MissingCount != 1 || e.Satisfied() {
		t.Errorf("required count: %+v", e)
	}
	f.svc.Policy = defaults

	f.svc.Policy.AllowedKinds = []string{string(device.KindSecurityKey)}
	_, err = f.signIn(t, "alice", "", "123456")
	if e := wantError[*KindNotAllowedError](t, err); e.Kind != string(device.KindSmartcard) || len(piv2.signed) != 0 {
		t.Errorf("kind not allowed: %v after %d signatures", e, len(piv2.signed))
	}
	f.svc.Policy = defaults

	var wrong *hwerr.PINIncorrect
	if _, err := f.signIn(t, "alice", "", "000000"); !errors.As(err, &wrong) || f.tries() != 1 {
		t.Errorf("wrong PIN: %v after %d tries", err, f.tries())
	}

	f.svc.Trust = &Trust{roots: x509.NewCertPool()}
	_, err = f.signIn(t, "alice", "", "123456")
	wantError[*CertificateError](t, err)
	f.svc.Trust = nil
	f.svc.Mapping = []string{"upn"}
	_, err = f.signIn(t, "alice", "", "123456")
	wantError[*MismatchError](t, err)
	f.svc.Mapping = nil
	if len(piv2.signed) != 1 {
		t.Errorf("the card signed %d times; only the wrong PIN should have reached it", len(piv2.signed))
	}
	// The last of these three failures spent no try on the card: the
	// limiter answers now, before the card.
	_, err = f.signIn(t, "alice", "", "123456")
	wantError[*TooManyAttemptsError](t, err)
	if len(piv2.signed) != 1 {
		t.Errorf("the card signed over the limit")
	}
	f.svc.Failures = NewLimiter(3, time.Minute)

	// An impostor under piv-2's id reports piv-2's key but holds another.
	impostor := card{newKeyDevice(t, must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))), "piv-2"}
	impostor.reported = piv2.reported
	f.devices["piv-2"] = impostor
	_, err = f.signIn(t, "alice", "", "123456")
	wantError[*MismatchError](t, err)
}

// securityKey is a fake FIDO2 key below the backend interface: one P-256
// credential, assertions with user presence and verification after the
// PIN, and a signature counter.
type securityKey struct {
	device.SecurityKey // the rest of the interface: not called by sign-in
	key                *ecdsa.PrivateKey
	counter            uint32
}

func (k *securityKey) Info() device.Info {
	return device.Info{ID: "fido-1", Kind: device.KindSecurityKey}
}

func (k *securityKey) GetAssertion(_ context.Context, req device.GetAssertion) (device.Assertion, error) {
	if string(req.PIN) != "123456" {
		return device.Assertion{}, &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(7)}
	}
	k.counter++
	rp := webauthn.RPIDHash(req.RPID)
	authData := append(rp[:], webauthn.FlagUP|webauthn.FlagUV)
	authData = binary.BigEndian.AppendUint32(authData, k.counter)
	digest := sha256.Sum256(append(slices.Clone(authData), req.ClientDataHash...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.key, digest[:])
	return device.Assertion{CredentialID: req.CredentialIDs[0], AuthData: authData, Signature: sig, Counter: k.counter}, err
}

// TestSignInSecurityKey: a security key proves possession with an
// assertion and returns its new counter; a counter that went backwards is
// a possible clone.
func TestSignInSecurityKey(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	sk := &securityKey{key: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), counter: 10}
	der := must(x509.MarshalPKIXPublicKey(sk.key.Public()))
	if _, err := f.st.AddRegistration(ctx, store.Registration{User: "carol", AuthenticatorID: "fido-1", Kind: string(device.KindSecurityKey),
		Backend: "fido2", KeyID: "Y3JlZA", CredentialID: []byte("cred"), PublicKey: der, SignCount: 10}, 5, false); err != nil {
		t.Fatal(err)
	}
	f.svc.RelyingParty = config.Defaults().RelyingParty()
	// The key is plugged in under another id: security keys have no serial.
	f.devices["fido-other"] = sk
	res, err := f.svc.SignIn(ctx, "carol", "", []byte("123456"))
	if err != nil || res.Counter != 11 {
		t.Fatalf("security key sign-in: counter %d, %v", res.Counter, err)
	}
	var wrong *hwerr.PINIncorrect
	if _, err := f.svc.SignIn(ctx, "carol", "", []byte("000000")); !errors.As(err, &wrong) {
		t.Errorf("wrong PIN: %v", err)
	}
	sk.counter = 3 // a clone that started from an older counter
	_, err = f.svc.SignIn(ctx, "carol", "", []byte("123456"))
	if e := wantError[*PossibleCloneError](t, err); !errors.Is(e, webauthn.ErrPossibleClone) {
		t.Errorf("PossibleCloneError %v does not wrap webauthn.ErrPossibleClone", e)
	}
	// Another key answering for the credential id.
	sk.key, sk.counter = must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), 20
	_, err = f.svc.SignIn(ctx, "carol", "", []byte("123456"))
	wantError[*MismatchError](t, err)
}

// TestStartSessionAndForget: a session starts pending or open with the
// configured lifetimes, keeps the PIN only when PINs are cached, and records
// the use; Forget deletes the remembered authenticator and the cached PINs
// and says which existed.
func TestStartSessionAndForget(t *testing.T) {
	f := newServiceFixture(t)
	ctx := context.Background()
	if got, err := f.svc.Forget(ctx, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("nothing to forget: %q, %v", got, err)
	}
	res, err := f.svc.SignIn(ctx, "alice", "piv-1", []byte("123456"))
	if err != nil {
		t.Fatal(err)
	}
	open, err := f.svc.StartSession(ctx, res, []byte("123456"), false)
	if err != nil || open.Pending || open.User != "alice" || open.Authenticator != "piv-1" || open.ExpiresAt.Sub(open.StartedAt) != time.Hour {
		t.Fatalf("open session %+v, %v", open, err)
	}
	if f.svc.Sessions.CachedPIN("alice", "piv-1") != nil {
		t.Error("a PIN was cached with cache_pin off")
	}
	regs, err := f.st.Registrations(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range regs {
		if used := !r.LastUsedAt.IsZero(); used != (r.AuthenticatorID == "piv-1") {
			t.Errorf("%s: last used %v", r.AuthenticatorID, r.LastUsedAt)
		}
	}
	if got := f.svc.LastAuthenticator(ctx, "alice"); got != "piv-1" {
		t.Errorf("remembered %q, want piv-1", got)
	}

	f.svc.CachePIN = true
	pending, err := f.svc.StartSession(ctx, res, []byte("123456"), true)
	if err != nil || !pending.Pending || pending.ExpiresAt.Sub(pending.StartedAt) != time.Minute {
		t.Fatalf("pending session %+v, %v", pending, err)
	}
	if string(f.svc.Sessions.CachedPIN("alice", "piv-1")) != "123456" {
		t.Error("the PIN was not cached with cache_pin on")
	}
	got, err := f.svc.Forget(ctx, "alice")
	if want := []string{RememberLastAuthenticator, ForgottenCachedPIN}; err != nil || !slices.Equal(got, want) {
		t.Fatalf("Forget = %q, %v, want %q", got, err, want)
	}
	if f.svc.Sessions.CachedPIN("alice", "piv-1") != nil || f.svc.LastAuthenticator(ctx, "alice") != "" {
		t.Error("Forget left something")
	}
	if _, ok := f.svc.Sessions.Get(pending.ID); !ok {
		t.Error("Forget ended the session; it only drops its PIN")
	}
	f.svc.Sessions.Close()
	if _, err := f.svc.StartSession(ctx, res, nil, false); !errors.Is(err, ErrShuttingDown) {
		t.Errorf("after Close: %v", err)
	}
}
