package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store"
)

func (d *Daemon) getRegistrations(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	regs, err := d.store.Registrations(r.Context(), name)
	if err != nil {
		return err
	}
	resp := ipc.RegistrationsResponse{User: name, Limit: d.cfg.Policy.MaxAuthenticators, Registrations: make([]ipc.Registration, 0, len(regs)),
		LastAuthenticator: d.signIn.LastAuthenticator(r.Context(), name)}
	for _, reg := range regs {
		if reg.Default {
			resp.Default = reg.ID
		}
		resp.Registrations = append(resp.Registrations, registrationToAPI(reg))
	}
	return server.WriteJSON(w, http.StatusOK, resp)
}

// postRegistration registers a present authenticator to a user after it
// proves possession: the PIN is verified on it and it signs a fresh
// challenge that is checked against the key being registered.
func (d *Daemon) postRegistration(w http.ResponseWriter, r *http.Request) error {
	var req ipc.RegisterRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	if req.Authenticator == "" {
		return ipc.Errorf(ipc.CodeBadRequest, "authenticator is required")
	}
	if err := validName("label", req.Label); err != nil {
		return err
	}
	if err := requireSecret("pin", req.PIN); err != nil {
		return err
	}
	dev, err := d.device(req.Authenticator)
	if err != nil {
		return err
	}
	info := dev.Info()
	if err := signin.CheckKind(d.cfg.Policy, string(info.Kind)); err != nil {
		return err
	}
	// Before any PIN reaches the card: registering someone else's card must
	// not become a way to guess its PIN (the store checks again atomically).
	owners, err := d.registeredTo(r, info.ID)
	if err != nil {
		return err
	}
	for _, u := range owners {
		if u == name {
			return ipc.Errorf(ipc.CodeAlreadyRegistered, "this authenticator is already registered to %s", name)
		}
	}
	if len(owners) > 0 && !d.cfg.Policy.AllowShared {
		return registeredToAnother()
	}
	// A cheap early answer, so a user at the limit spends no PIN try; the
	// store checks again atomically.
	if n, err := d.store.CountRegistrations(r.Context(), name); err != nil {
		return err
	} else if n >= d.cfg.Policy.MaxAuthenticators {
		return limitReached(d.cfg.Policy.MaxAuthenticators)
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	var reg store.Registration
	before := signin.Describe(dev) // the PIN state as listed, before this try
	err = d.failures.Do(signin.Key{Authenticator: info.ID, User: name, Secret: signin.SecretPIN}, func() error {
		var err error
		reg, err = d.proveForRegistration(ctx, dev, name, req.PIN)
		return d.blocks.Outcome(err, before)
	})
	if err != nil {
		return err
	}
	reg.User, reg.AuthenticatorID, reg.Kind, reg.Backend, reg.DeviceID = name, info.ID, string(info.Kind), info.Backend, info.Device
	reg.Label = req.Label
	if reg.Label == "" {
		reg.Label = info.Label
	}
	reg.RegisteredBy = d.actingUser(r)
	reg, err = d.store.AddRegistration(r.Context(), reg, d.cfg.Policy.MaxAuthenticators, d.cfg.Policy.AllowShared)
	if err != nil {
		return err
	}
	d.log.Info("authenticator registered", "user", name, "authenticator", info.ID, "registration", reg.ID, "by", reg.RegisteredBy)
	d.manager.Publish(ipc.Event{Type: ipc.EventRegistrationAdded, User: name, Authenticator: info.ID, Reader: info.Reader, Data: registrationData(reg.ID)})
	return server.WriteJSON(w, http.StatusCreated, registrationToAPI(reg))
}

// proveForRegistration proves possession of the authenticator: a card
// verifies the PIN and signs a fresh challenge with its authentication key;
// a security key makes a new credential (PIN and touch) for the user.
func (d *Daemon) proveForRegistration(ctx context.Context, dev device.Device, user string, pin []byte) (store.Registration, error) {
	if sk, ok := dev.(device.SecurityKey); ok {
		return d.registerSecurityKey(ctx, sk, user, pin)
	}
	key, err := signin.DeviceKey(dev.Info(), "")
	if err != nil {
		return store.Registration{}, err
	}
	proven, err := signin.ProveKey(ctx, dev, key, pin, nil)
	if err != nil {
		return store.Registration{}, err
	}
	reg := store.Registration{KeyID: proven.ID, PublicKey: proven.PublicDER}
	if proven.Certificate != nil {
		reg.Certificate = proven.Certificate.Raw
	}
	return reg, nil
}

// deleteRegistration removes a registration; it cannot be undone. When it was
// the default, the default moves to another registration (R7).
func (d *Daemon) deleteRegistration(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	id := r.PathValue("rid")
	reg, err := d.store.Registration(r.Context(), name, id)
	if err != nil {
		return err
	}
	newDefault, err := d.store.RemoveRegistration(r.Context(), name, id)
	if err != nil {
		return err
	}
	d.log.Info("registration removed", "user", name, "registration", id, "authenticator", reg.AuthenticatorID)
	d.sessions.EndWhere(func(s signin.Session) bool {
		return s.User == name && s.Authenticator == reg.AuthenticatorID
	}, signin.EndUnregistered)
	d.manager.Publish(ipc.Event{Type: ipc.EventRegistrationRemoved, User: name, Authenticator: reg.AuthenticatorID, Data: registrationData(id)})
	return server.WriteJSON(w, http.StatusOK, ipc.RegistrationRemoved{Removed: id, Default: newDefault})
}

func (d *Daemon) putDefault(w http.ResponseWriter, r *http.Request) error {
	var req ipc.SetDefaultRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	if req.Registration == "" {
		return ipc.Errorf(ipc.CodeBadRequest, "registration is required")
	}
	if err := d.store.SetDefault(r.Context(), name, req.Registration); err != nil {
		return err
	}
	return server.WriteJSON(w, http.StatusOK, map[string]string{"default": req.Registration})
}

// registeredTo returns the users an authenticator is registered to.
func (d *Daemon) registeredTo(r *http.Request, id string) ([]string, error) {
	regs, err := d.store.FindByAuthenticator(r.Context(), id)
	if err != nil {
		return nil, err
	}
	users := make([]string, 0, len(regs))
	for _, reg := range regs {
		users = append(users, reg.User)
	}
	return users, nil
}

// registrationData is the data of registration events.
func registrationData(id string) json.RawMessage {
	b, _ := json.Marshal(map[string]string{"registration": id})
	return b
}

func registeredToAnother() *ipc.Error {
	return ipc.Errorf(ipc.CodeRegisteredToAnotherUser, "this authenticator is registered to another user; use your own, or ask an administrator to remove that registration first")
}

func limitReached(limit int) error {
	return &ipc.Error{
		Code: ipc.CodeLimitReached,
		Message: fmt.Sprintf("You can't register this authenticator because you already have %s smart cards, virtual smart cards or security keys. "+
			"Please contact your administrator to delete one of your authenticators.", signin.CountWord(limit)),
		Details: map[string]any{"limit": limit},
	}
}

func registrationToAPI(reg store.Registration) ipc.Registration {
	out := ipc.Registration{
		ID:            reg.ID,
		User:          reg.User,
		Authenticator: reg.AuthenticatorID,
		Kind:          reg.Kind,
		Backend:       reg.Backend,
		Label:         reg.Label,
		Default:       reg.Default,
		Device:        reg.DeviceID,
		CreatedAt:     reg.CreatedAt,
	}
	if len(reg.PublicKey) > 0 {
		out.PublicKey = certutil.EncodePEM(certutil.PEMPublicKey, reg.PublicKey)
	}
	if len(reg.Certificate) > 0 {
		out.Certificate = certutil.EncodePEM(certutil.PEMCertificate, reg.Certificate)
	}
	if !reg.LastUsedAt.IsZero() {
		t := reg.LastUsedAt.UTC().Truncate(time.Second)
		out.LastUsedAt = &t
	}
	return out
}

// storeError maps the store's error classes to API errors.
func storeError(err error, limit int) *ipc.Error {
	switch {
	case errors.Is(err, store.ErrLimitReached):
		return limitReached(limit).(*ipc.Error)
	case errors.Is(err, store.ErrAlreadyRegistered):
		return ipc.Errorf(ipc.CodeAlreadyRegistered, "this authenticator is already registered to the user")
	case errors.Is(err, store.ErrRegisteredToOther):
		return registeredToAnother()
	case errors.Is(err, store.ErrAlreadyLinked):
		return ipc.Errorf(ipc.CodeAlreadyRegistered, "this identity is linked to another account")
	case errors.Is(err, store.ErrNotFound):
		return ipc.Errorf(ipc.CodeNotFound, "no such registration")
	case errors.Is(err, store.ErrInvalid):
		return ipc.Errorf(ipc.CodeBadRequest, "%v", err)
	}
	return nil
}
