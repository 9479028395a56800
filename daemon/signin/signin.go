package signin

import (
	"cmp"
	"context"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/store"
)

// What sign-in remembers for a user, by the names Forget reports (the API's
// names of forgotten sign-in information).
const (
	// RememberLastAuthenticator is the key under which the registry
	// remembers the authenticator a user signed in with last (R8).
	RememberLastAuthenticator = "last_authenticator"
	// ForgottenCachedPIN names the PINs cached in a user's sessions
	// (signin.cache_pin).
	ForgottenCachedPIN = "cached_pin"
)

// Registry is the part of the registry sign-in uses (store.Store is one).
type Registry interface {
	Links
	Registrations(ctx context.Context, user string) ([]store.Registration, error)
	FindByAuthenticator(ctx context.Context, authenticatorID string) ([]store.Registration, error)
	CountRegistrations(ctx context.Context, user string) (int, error)
	AddRegistration(ctx context.Context, r store.Registration, limit int, allowShared bool) (store.Registration, error)
	MarkUsed(ctx context.Context, user, id string, at time.Time, signCount uint32) error
	Remember(ctx context.Context, user, key, value string) error
	Recall(ctx context.Context, user string) (map[string]string, error)
	Forget(ctx context.Context, user string) error
}

// Devices finds present authenticators (the daemon's manager does).
type Devices interface {
	Device(id string) (device.Device, error)
	FirstOfKind(kind device.Kind) (device.Device, error)
}

// Service signs users in with their registered authenticators: it chooses
// the registration whose authenticator is present, checks the certificate
// policy and identity mapping, and has the authenticator prove possession
// of the registered key after its PIN, within the failure limits.
type Service struct {
	Registry Registry
	Devices  Devices
	Accounts UserIDs
	Failures *Limiter
	Sessions *Sessions
	Log      *slog.Logger
	// SessionLifetime is how long a session lasts; OpenTimeout how long a
	// pending one waits to be opened.
	SessionLifetime, OpenTimeout time.Duration
	// CachePIN keeps the PIN with the session (signin.cache_pin).
	CachePIN bool
	// Trust is the certificate policy; nil accepts every certificate.
	Trust *Trust
	// Mapping are the identity mapping rules (signin.mapping).
	Mapping []string
	// RelyingParty is the WebAuthn relying party id of security keys.
	RelyingParty string
	// Policy is the registration policy: what a user must have registered
	// before they may sign in (R13) and the kinds allowed (R12).
	Policy config.Policy
	// PINBlocks sees the outcome of every try that reached a device and
	// returns what the caller gets (a blocked PIN as *PINBlockedError,
	// announced once); nil returns the outcome unchanged.
	PINBlocks *PINBlocks
}

// Result is a successful sign-in.
type Result struct {
	Registration store.Registration
	Device       device.Device
	// Counter is a security key's new signature counter.
	Counter uint32
}

// SignIn picks the authenticator (the one named, when authenticator is not
// empty) and proves that the person holds it. Nothing is tried on a device
// when the user is over the failure limit for it.
func (s *Service) SignIn(ctx context.Context, user, authenticator string, pin []byte) (_ Result, err error) {
	regs, err := s.Registry.Registrations(ctx, user)
	if err != nil {
		return Result{}, err
	}
	if err := CheckRequirements(s.Policy, user, regs); err != nil {
		return Result{}, err
	}
	if len(regs) == 0 {
		return Result{}, &NotRegisteredError{User: user}
	}
	if authenticator != "" {
		// Naming authenticators that are not the user's spends no try, but
		// counts as a failure for the named one.
		named := Key{Authenticator: authenticator, User: user, Secret: SecretPIN}
		if err := s.Failures.Allow(named); err != nil {
			return Result{}, err
		}
		defer func() {
			if _, ok := errors.AsType[*NotRegisteredError](err); ok {
				s.Failures.Record(named, err)
			}
		}()
	}
	reg, dev, err := s.pick(regs, authenticator, s.LastAuthenticator(ctx, user))
	if err != nil {
		return Result{Registration: reg}, err
	}
	if err := CheckKind(s.Policy, reg.Kind); err != nil {
		return Result{Registration: reg}, err
	}
	res := Result{Registration: reg, Device: dev}
	err = s.Attempt(Key{Authenticator: reg.AuthenticatorID, User: user, Secret: SecretPIN}, dev, func() error {
		var err error
		if sk, ok := dev.(device.SecurityKey); ok && device.Kind(reg.Kind) == device.KindSecurityKey {
			res.Counter, err = s.proveSecurityKey(ctx, sk, reg, pin)
		} else {
			err = s.proveCard(ctx, dev, reg, user, pin)
		}
		return err
	})
	return res, err
}

// Attempt runs try, which presents the secret of k to dev, unless k is over
// the failure limit, and records its outcome. A blocked PIN comes back as
// a *PINBlockedError, and the try that blocked it is announced
// (PINBlocks).
func (s *Service) Attempt(k Key, dev device.Device, try func() error) error {
	before := describe(dev) // the PIN state as listed, before this try
	return s.Failures.Do(k, func() error {
		err := try()
		if s.PINBlocks != nil {
			return s.PINBlocks.Outcome(err, before)
		}
		return err
	})
}

// StartSession starts the session of a successful sign-in (pending, to be
// opened by the PAM session phase, when pending is set), keeping pin with
// it when PINs are cached, and records the use: the registration's last use
// and signature counter, and the authenticator as the one the user signed
// in with last. A failure to record is logged, not returned.
func (s *Service) StartSession(ctx context.Context, res Result, pin []byte, pending bool) (Session, error) {
	reg := res.Registration
	var cached []byte
	if s.CachePIN {
		cached = pin
	}
	lifetime := s.SessionLifetime
	if pending {
		lifetime = s.OpenTimeout
	}
	sess, err := s.Sessions.Start(reg.User, reg.AuthenticatorID, lifetime, cached, pending)
	if err != nil {
		return Session{}, err
	}
	if err := s.Registry.MarkUsed(ctx, reg.User, reg.ID, time.Now(), res.Counter); err != nil {
		s.Log.Warn("record last use", "user", reg.User, "err", err)
	}
	if err := s.Registry.Remember(ctx, reg.User, RememberLastAuthenticator, reg.AuthenticatorID); err != nil {
		s.Log.Warn("remember last authenticator", "user", reg.User, "err", err)
	}
	return sess, nil
}

// Forget deletes exactly the sign-in information hwauthd remembers for a
// user: the authenticator they signed in with last (which sign-in offers
// first) and the PINs cached in their sessions (signin.cache_pin). It
// returns the names of what existed and is now gone (RememberLastAuthenticator,
// ForgottenCachedPIN).
func (s *Service) Forget(ctx context.Context, user string) ([]string, error) {
	remembered, err := s.Registry.Recall(ctx, user)
	if err != nil {
		return nil, err
	}
	if err := s.Registry.Forget(ctx, user); err != nil {
		return nil, err
	}
	forgotten := slices.Sorted(maps.Keys(remembered))
	if s.Sessions.DropPINsWhere(func(sess Session) bool { return sess.User == user }) > 0 {
		forgotten = append(forgotten, ForgottenCachedPIN)
	}
	return forgotten, nil
}

// proveCard checks a card's certificate against the trust anchors and
// mapping rules, then verifies the PIN and has the card sign a fresh
// challenge with the registered key. The certificate is checked first, so a
// card that would be refused spends no PIN try.
func (s *Service) proveCard(ctx context.Context, dev device.Device, reg store.Registration, user string, pin []byte) error {
	info := dev.Info()
	key, err := deviceKey(info, reg.KeyID)
	if err != nil {
		return err
	}
	cert := key.Certificate
	if s.Trust != nil && cert == nil {
		return certificateErrorf("key %s of %s has no certificate to check against the trust anchors", key.ID, info.ID)
	}
	if err := s.Trust.Check(cert, time.Now()); err != nil {
		return err
	}
	if err := mapIdentity(ctx, s.Registry, s.Accounts, s.Mapping, cert, user); err != nil {
		return err
	}
	registered, err := x509.ParsePKIXPublicKey(reg.PublicKey)
	if err != nil {
		return fmt.Errorf("registration %s: stored public key: %w", reg.ID, err)
	}
	_, err = proveKey(ctx, dev, key, pin, registered)
	return err
}

// proveSecurityKey has the key sign a fresh challenge with the registered
// credential (PIN and touch) and verifies it: flags, signature and the
// signature counter, which must increase (else the key may be a clone, a
// *PossibleCloneError). It returns the new counter.
func (s *Service) proveSecurityKey(ctx context.Context, sk device.SecurityKey, reg store.Registration, pin []byte) (uint32, error) {
	pub, err := x509.ParsePKIXPublicKey(reg.PublicKey)
	if err != nil {
		return 0, fmt.Errorf("registration %s: stored public key: %w", reg.ID, err)
	}
	cdh, err := challengeDigest(crypto.SHA256)
	if err != nil {
		return 0, err
	}
	a, err := sk.GetAssertion(ctx, device.GetAssertion{RPID: s.RelyingParty, ClientDataHash: cdh,
		CredentialIDs: [][]byte{reg.CredentialID}, UserPresence: true, PIN: pin})
	if err != nil {
		return 0, err
	}
	n, err := webauthn.VerifyAssertion(pub, s.RelyingParty, cdh, a.AuthData, a.Signature, true, true, reg.SignCount)
	switch {
	case errors.Is(err, webauthn.ErrPossibleClone):
		s.Log.Warn("security key signature counter did not increase: possible clone", "user", reg.User, "registration", reg.ID)
		return 0, &PossibleCloneError{Err: err}
	case err != nil:
		return 0, mismatchErrorf("the security key did not prove possession of the registered credential: %v", err)
	}
	return n, nil
}

// pick chooses among the user's registrations the one whose authenticator
// is present: the one named, else the one the user signed in with last
// (remembered sign-in information), else the default, else the oldest.
func (s *Service) pick(regs []store.Registration, named, last string) (store.Registration, device.Device, error) {
	if named != "" {
		regs = slices.DeleteFunc(slices.Clone(regs), func(r store.Registration) bool { return r.AuthenticatorID != named })
	}
	rank := func(r store.Registration) int {
		switch {
		case last != "" && r.AuthenticatorID == last:
			return 0
		case r.Default:
			return 1
		}
		return 2
	}
	// A stable sort keeps the store's order (oldest first) within a rank.
	ordered := slices.Clone(regs)
	slices.SortStableFunc(ordered, func(a, b store.Registration) int { return cmp.Compare(rank(a), rank(b)) })
	for _, reg := range ordered {
		dev, err := s.Devices.Device(reg.AuthenticatorID)
		if err != nil && device.Kind(reg.Kind) == device.KindSecurityKey {
			// A security key has no serial: its credential may be on a key
			// plugged in elsewhere.
			dev, err = s.Devices.FirstOfKind(device.KindSecurityKey)
		}
		if err == nil {
			return reg, dev, nil
		}
	}
	if named != "" {
		if _, err := s.Devices.Device(named); err == nil {
			return store.Registration{}, nil, &NotRegisteredError{Authenticator: named}
		}
	}
	return store.Registration{}, nil, ErrNoAuthenticator
}

// describe returns what sign-in needs to know of dev as it is listed now.
func describe(dev device.Device) Authenticator {
	info := dev.Info()
	return Authenticator{ID: info.ID, Kind: info.Kind, Reader: info.Reader, Blocked: info.PIN.Blocked}
}

// LastAuthenticator returns the authenticator user signed in with last, ""
// when nothing is remembered (or after forget).
func (s *Service) LastAuthenticator(ctx context.Context, user string) string {
	remembered, err := s.Registry.Recall(ctx, user)
	if err != nil {
		s.Log.Warn("recall remembered sign-in information", "user", user, "err", err)
		return ""
	}
	return remembered[RememberLastAuthenticator]
}
