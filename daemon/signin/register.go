package signin

import (
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"slices"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/store"
)

// Registering is a request to register a present authenticator to a user
// (R4).
type Registering struct {
	User   string
	Device device.Device
	PIN    []byte
	// Label names the registration; "" takes the authenticator's label.
	Label string
	// By is who registers it (the user, or an administrator).
	By string
}

// AlreadyRegisteredError says that the authenticator is already registered
// to the user.
type AlreadyRegisteredError struct {
	User string
}

func (e *AlreadyRegisteredError) Error() string {
	return fmt.Sprintf("this authenticator is already registered to %s", e.User)
}

// Register binds a present authenticator to a user once it has proven
// possession (R4): a card verifies the PIN and signs a fresh challenge with
// its authentication key, a security key makes a new credential for the
// user (PIN and touch). The kind policy, the authenticator's owners (a
// *AlreadyRegisteredError, or store.ErrRegisteredToOther unless shared
// authenticators are allowed) and the user's limit (store.ErrLimitReached)
// are checked before any PIN reaches the device, so registering someone
// else's card is no way to guess its PIN and a user at the limit spends no
// try; the registry checks owners and limit again atomically when it adds
// the registration.
func (s *Service) Register(ctx context.Context, req Registering) (store.Registration, error) {
	info := req.Device.Info()
	if err := CheckKind(s.Policy, string(info.Kind)); err != nil {
		return store.Registration{}, err
	}
	owners, err := s.Registry.FindByAuthenticator(ctx, info.ID)
	if err != nil {
		return store.Registration{}, err
	}
	if slices.ContainsFunc(owners, func(r store.Registration) bool { return r.User == req.User }) {
		return store.Registration{}, &AlreadyRegisteredError{User: req.User}
	}
	if len(owners) > 0 && !s.Policy.AllowShared {
		return store.Registration{}, store.ErrRegisteredToOther
	}
	if n, err := s.Registry.CountRegistrations(ctx, req.User); err != nil {
		return store.Registration{}, err
	} else if n >= s.Policy.MaxAuthenticators {
		return store.Registration{}, store.ErrLimitReached
	}
	var reg store.Registration
	err = s.Attempt(Key{Authenticator: info.ID, User: req.User, Secret: SecretPIN}, req.Device, func() error {
		var err error
		reg, err = s.proveForRegistration(ctx, req.Device, req.User, req.PIN)
		return err
	})
	if err != nil {
		return store.Registration{}, err
	}
	reg.User, reg.AuthenticatorID, reg.Kind, reg.Backend, reg.DeviceID = req.User, info.ID, string(info.Kind), info.Backend, info.Device
	reg.Label = cmp.Or(req.Label, info.Label)
	reg.RegisteredBy = req.By
	return s.Registry.AddRegistration(ctx, reg, s.Policy.MaxAuthenticators, s.Policy.AllowShared)
}

// proveForRegistration proves possession of the authenticator and returns
// the registration's key: a card's authentication key, or a security key's
// new credential.
func (s *Service) proveForRegistration(ctx context.Context, dev device.Device, user string, pin []byte) (store.Registration, error) {
	if sk, ok := dev.(device.SecurityKey); ok {
		return s.makeCredential(ctx, sk, user, pin)
	}
	key, err := deviceKey(dev.Info(), "")
	if err != nil {
		return store.Registration{}, err
	}
	proven, err := proveKey(ctx, dev, key, pin, nil)
	if err != nil {
		return store.Registration{}, err
	}
	reg := store.Registration{KeyID: proven.ID, PublicKey: proven.PublicDER}
	if proven.Certificate != nil {
		reg.Certificate = proven.Certificate.Raw
	}
	return reg, nil
}

// makeCredential makes a credential for user on the key (PIN and touch)
// for the relying party of sign-in.
func (s *Service) makeCredential(ctx context.Context, sk device.SecurityKey, user string, pin []byte) (store.Registration, error) {
	userID := sha256.Sum256([]byte("hwauthd user " + user))
	cdh, err := challengeDigest(crypto.SHA256)
	if err != nil {
		return store.Registration{}, err
	}
	c, err := sk.MakeCredential(ctx, device.MakeCredential{RPID: s.RelyingParty, UserID: userID[:16], UserName: user, ClientDataHash: cdh, PIN: pin})
	if err != nil {
		return store.Registration{}, err
	}
	return store.Registration{
		KeyID:        base64.RawURLEncoding.EncodeToString(c.ID),
		PublicKey:    c.PublicKeyDER,
		CredentialID: c.ID,
		SignCount:    c.Counter,
	}, nil
}
