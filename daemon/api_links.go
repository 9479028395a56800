package daemon

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
	"github.com/hwauthd/hwauthd/store"
)

// Identity links (R11): an admin links certificate identities to a local
// account, so one account can sign in with cards issued to several of the
// person's identities (the "link" mapping rule). Users list their own links
// and, under policy.self_service, remove them. With account linking off (no
// "link" rule) links are kept but inert, and status and the list say so.

// linking reports whether account linking is on.
func (d *Daemon) linking() bool { return slices.Contains(d.cfg.SignIn.Mapping, "link") }

func (d *Daemon) getLinks(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	links, err := d.store.Links(r.Context(), name)
	if err != nil {
		return err
	}
	resp := ipc.LinksResponse{User: name, Links: make([]ipc.Link, 0, len(links)), Linking: d.linking()}
	for _, l := range links {
		resp.Links = append(resp.Links, ipc.Link{Identity: l.Identity, CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt, Stale: !signin.LinkIsFor(l, d.accounts, name)})
	}
	return server.WriteJSON(w, http.StatusOK, resp)
}

func (d *Daemon) postLink(w http.ResponseWriter, r *http.Request) error {
	var req ipc.LinkRequest
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	if err := validIdentity(req.Identity); err != nil {
		return err
	}
	by := d.actingUser(r)
	uid, ok := d.accounts.UserID(name)
	if !ok {
		return ipc.Errorf(ipc.CodeNotFound, "no account %q on this machine", name)
	}
	if err := d.store.AddLink(r.Context(), name, uid, req.Identity, by); err != nil {
		return err
	}
	d.log.Info("identity linked", "user", name, "identity", req.Identity, "by", by)
	// The answer is the link as stored, with the store's creation time.
	links, err := d.store.Links(r.Context(), name)
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Identity == req.Identity {
			return server.WriteJSON(w, http.StatusCreated, ipc.Link{Identity: l.Identity, CreatedBy: l.CreatedBy, CreatedAt: l.CreatedAt})
		}
	}
	return fmt.Errorf("link of %s to %s not found right after it was made", req.Identity, name)
}

func (d *Daemon) deleteLink(w http.ResponseWriter, r *http.Request) error {
	name, err := d.account(r.PathValue("user"))
	if err != nil {
		return err
	}
	identity := r.PathValue("identity")
	if err := d.store.RemoveLink(r.Context(), name, identity); errors.Is(err, store.ErrNotFound) {
		return ipc.Errorf(ipc.CodeNotFound, "%s is not linked to %s", identity, name)
	} else if err != nil {
		return err
	}
	d.log.Info("identity unlinked", "user", name, "identity", identity)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// validIdentity accepts "upn:…", "email:…", "cn:…" and "subject:…" with a
// non-empty value.
func validIdentity(id string) error {
	for _, p := range []string{ipc.IdentityUPN, ipc.IdentityEmail, ipc.IdentityCN, ipc.IdentitySubject} {
		if v, ok := strings.CutPrefix(id, p); ok && strings.TrimSpace(v) != "" {
			return nil
		}
	}
	return ipc.Errorf(ipc.CodeBadRequest, "identity must be upn:…, email:…, cn:… or subject:…, got %q", id)
}
