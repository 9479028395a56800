package daemon

import (
	"net/http"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
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
	return server.WriteJSON(w, http.StatusOK, requirementsToAPI(signin.RequirementsOf(d.cfg.Policy, name, regs)))
}

// requirementsToAPI is the API's form of sign-in's requirements.
func requirementsToAPI(req signin.Requirements) ipc.Requirements {
	return ipc.Requirements{
		User:          req.User,
		RequiredCount: req.RequiredCount,
		RequiredKinds: append([]string{}, req.RequiredKinds...),
		Registered:    req.Registered,
		Satisfied:     req.Satisfied(),
		MissingCount:  req.MissingCount,
		MissingOneOf:  append([]string{}, req.MissingOneOf...),
		Message:       req.Message,
	}
}
