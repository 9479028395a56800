package server

import (
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
)

// TestAnyOfDenies checks AnyOf's answers: allowed when one checker allows,
// the last checker's error when all deny, and a denial (not an allowance)
// when there is no checker to ask.
func TestAnyOfDenies(t *testing.T) {
	alice := Peer{UID: 1000, GID: 1000}
	for _, tc := range []struct {
		name   string
		access Access
		peer   Peer
		want   string // "" for allowed, else the error's text
	}{
		{"root allowed", AnyOf(Root, InGroup(4242)), Peer{}, ""},
		{"group allowed", AnyOf(Root, InGroup(1000)), alice, ""},
		{"all deny: last checker's error", AnyOf(Root, InGroup(4242)), alice, "not allowed: your account is not in a group allowed to do this"},
		{"no checker", AnyOf(), Peer{}, "not allowed: no rule allows this"},
		{"only nil checkers", AnyOf(nil, nil), Peer{}, "not allowed: no rule allows this"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.access.CheckAccess(nil, tc.peer)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("denied: %v", err)
				}
				return
			}
			var e *ipc.Error
			if !errors.As(err, &e) || e.Code != ipc.CodeUnauthorized || err.Error() != tc.want {
				t.Fatalf("got %v, want %s with %q", err, ipc.CodeUnauthorized, tc.want)
			}
		})
	}
}
