package daemon

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store"
)

// getRequirements answers what the policy asks the user to register before
// they may sign in, and what is still missing: the question a setup client
// asks ("what must this user still register?").
func (d *Daemon) getRequirements(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	regs, err := d.store.Registrations(r.Context(), name)
	if err != nil {
		return err
	}
	return server.WriteJSON(w, http.StatusOK, d.requirements(name, regs))
}

// requirements compares the user's registrations with the policy.
func (d *Daemon) requirements(user string, regs []store.Registration) ipc.Requirements {
	kinds := make([]string, len(regs))
	for i, reg := range regs {
		kinds[i] = reg.Kind
	}
	p := d.cfg.Policy
	count, oneOf := p.Missing(kinds)
	req := ipc.Requirements{
		User:          user,
		RequiredCount: p.RequiredCount,
		RequiredKinds: append([]string{}, p.RequiredKinds...),
		Registered:    len(regs),
		Satisfied:     count == 0,
		MissingCount:  count,
		MissingOneOf:  append([]string{}, oneOf...),
	}
	if p.RequireRegistration {
		req.RequiredCount = max(req.RequiredCount, 1)
	}
	if count > 0 {
		req.Message = d.missingMessage(count, oneOf)
	}
	return req
}

// registrationRequired is sign-in's answer to a user who has not registered
// what the policy asks for, or nil when they have.
func (d *Daemon) registrationRequired(user string, regs []store.Registration) error {
	req := d.requirements(user, regs)
	if req.Satisfied {
		return nil
	}
	return &ipc.Error{Code: ipc.CodeRegistrationRequired, Message: req.Message,
		Details: map[string]any{"missing_count": req.MissingCount, "missing_one_of": req.MissingOneOf}}
}

// missingMessage says in words of the Entra seed what is missing and how to
// set it up.
func (d *Daemon) missingMessage(count int, oneOf []string) string {
	what := "one more smart card, virtual smart card or security key"
	if count > 1 {
		what = countWord(count) + " more smart cards, virtual smart cards or security keys"
	}
	if count == 1 && len(oneOf) > 0 {
		what = "a " + kindWords(oneOf)
	} else if len(oneOf) > 0 {
		what += ", one of them a " + kindWords(oneOf)
	}
	how := "register it with hwauthctl register, then sign in again"
	if count > 1 {
		how = "register them with hwauthctl register, then sign in again"
	}
	if !d.cfg.Policy.SelfService {
		how = "ask your administrator to register it for you"
	}
	return fmt.Sprintf("You haven't set up the security info required by your organization: you need %s, so %s.", what, how)
}

// kindWords names authenticator kinds for people: "smart card or virtual
// smart card".
func kindWords(kinds []string) string {
	words := make([]string, len(kinds))
	for i, k := range kinds {
		words[i] = strings.ReplaceAll(strings.ReplaceAll(k, "smartcard", "smart card"), "-", " ")
	}
	return strings.Join(words, " or ")
}
