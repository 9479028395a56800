package daemon_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
)

// TestUsersSeeTheirOwnLinks (the account-linking seed): a user lists the
// identities linked to their account and removes one when self-service
// allows; another user sees none of them; an account created again under the
// same name shows the old account's links as stale; with linking off (no
// "link" mapping rule) status and the list say the links are not used.
func TestUsersSeeTheirOwnLinks(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	h.AddUser("bob")
	root, alice, bob, ctx := h.Client("root"), h.Client("alice"), h.Client("bob"), context.Background()
	for _, id := range []string{"upn:alice@corp.example", "email:alice@home.example"} {
		if _, err := root.Link(ctx, "alice", id); err != nil {
			t.Fatal(err)
		}
	}
	list, err := alice.Links(ctx, "alice")
	if err != nil || len(list.Links) != 2 || list.Linking || list.Links[0].Stale {
		t.Fatalf("alice's own links: %+v %v", list, err)
	}
	if st, err := alice.Status(ctx); err != nil || st.Policy.Linking {
		t.Fatalf("status with linking off: %+v %v", st, err)
	}
	if _, err := bob.Links(ctx, "alice"); !isCode(err, ipc.CodeUnauthorized) {
		t.Fatalf("bob lists alice's links: %v", err)
	}
	if _, err := alice.Link(ctx, "alice", "cn:Alice"); !isCode(err, ipc.CodeUnauthorized) {
		t.Fatalf("alice links an identity herself: %v", err)
	}
	if err := alice.Unlink(ctx, "alice", "email:alice@home.example"); err != nil {
		t.Fatalf("alice removes her own link: %v", err)
	}
	h.Accounts.Recreate("alice")
	list, err = h.Client("alice").Links(ctx, "alice")
	if err != nil || len(list.Links) != 1 || !list.Links[0].Stale {
		t.Fatalf("a new account named alice: %+v %v", list, err)
	}
	if _, err := root.Link(ctx, "alice", "upn:alice@corp.example"); err != nil {
		t.Fatal(err)
	}
	if list, err = root.Links(ctx, "alice"); err != nil || list.Links[0].Stale {
		t.Fatalf("linked again for the new account: %+v %v", list, err)
	}

	on := daemontest.New(t, func(c *config.Config) { c.SignIn.Mapping = []string{"link"} })
	if st, err := on.Client("root").Status(ctx); err != nil || !st.Policy.Linking {
		t.Fatalf("status with linking on: %+v %v", st, err)
	}
	off := daemontest.New(t, func(c *config.Config) { c.Policy.SelfService = false })
	off.AddUser("alice")
	if _, err := off.Client("root").Link(ctx, "alice", "cn:Alice"); err != nil {
		t.Fatal(err)
	}
	if err := off.Client("alice").Unlink(ctx, "alice", "cn:Alice"); !isCode(err, ipc.CodeUnauthorized) {
		t.Fatalf("unlink without self-service: %v", err)
	}
}

// isCode reports whether err is an API error with code.
func isCode(err error, code ipc.Code) bool {
	var e *ipc.Error
	return errors.As(err, &e) && e.Code == code
}
