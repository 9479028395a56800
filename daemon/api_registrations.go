package daemon

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/hwauthd/hwauthd/daemon/signin"
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
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	reg, err := d.signIn.Register(ctx, signin.Registering{User: name, Device: dev, PIN: req.PIN, Label: req.Label, By: d.actingUser(r)})
	if err != nil {
		return err
	}
	d.log.Info("authenticator registered", "user", name, "authenticator", reg.AuthenticatorID, "registration", reg.ID, "by", reg.RegisteredBy)
	d.manager.Publish(ipc.Event{Type: ipc.EventRegistrationAdded, User: name, Authenticator: reg.AuthenticatorID, Reader: dev.Info().Reader, Data: registrationData(reg.ID)})
	return server.WriteJSON(w, http.StatusCreated, registrationToAPI(reg))
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

// registeredToAnother answers store.ErrRegisteredToOther.
func registeredToAnother() *ipc.Error {
	return ipc.Errorf(ipc.CodeRegisteredToAnotherUser, "this authenticator is registered to another user; use your own, or ask an administrator to remove that registration first")
}

// limitReached answers store.ErrLimitReached with the seed's words (R5).
func limitReached(limit int) *ipc.Error {
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
		return limitReached(limit)
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
