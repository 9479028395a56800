package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/store/boltstore"
)

func newTestDaemon(t *testing.T) *Daemon {
	t.Helper()
	st, err := boltstore.Open(filepath.Join(t.TempDir(), "hwauthd.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d, err := New(Options{Config: config.Defaults(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestEveryRouteDeclaresAccess fails when a route has no access checker
// (deny by default) or a pattern outside /v1/.
func TestEveryRouteDeclaresAccess(t *testing.T) {
	d := newTestDaemon(t)
	seen := map[string]bool{}
	for _, r := range d.routes() {
		key := r.Method + " " + r.Pattern
		if r.Access == nil {
			t.Errorf("%s has no access checker", key)
		}
		if r.Handler == nil {
			t.Errorf("%s has no handler", key)
		}
		if !strings.HasPrefix(r.Pattern, "/v1/") {
			t.Errorf("%s is outside /v1/", key)
		}
		if seen[key] {
			t.Errorf("%s is declared twice", key)
		}
		seen[key] = true
	}
}

// TestAPIReferenceListsEveryRoute keeps docs/api.md in step with the route
// table, both ways, including who may call each route.
func TestAPIReferenceListsEveryRoute(t *testing.T) {
	documented, err := apitest.DocumentedRoutes("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	d := newTestDaemon(t)
	for _, r := range d.routes() {
		key := r.Method + " " + r.Pattern
		if _, ok := documented[key]; !ok {
			t.Errorf("docs/api.md has no row for %s", key)
		}
		delete(documented, key)
	}
	for key := range documented {
		t.Errorf("docs/api.md documents %s, which the daemon does not serve", key)
	}
}

func TestMapError(t *testing.T) {
	three := 3
	for _, tc := range []struct {
		err     error
		code    ipc.Code
		retries *int
	}{
		{fmt.Errorf("verify: %w", &hwerr.PINIncorrect{RetriesLeft: 3}), ipc.CodePINIncorrect, &three},
		{fmt.Errorf("verify: %w", hwerr.ErrPINBlocked), ipc.CodePINBlocked, nil},
		{fmt.Errorf("sign: %w", hwerr.ErrRemoved), ipc.CodeAuthenticatorRemoved, nil},
		{fmt.Errorf("list: %w", hwerr.ErrUnavailable), ipc.CodeBackendUnavailable, nil},
		{fmt.Errorf("x: %w", hwerr.ErrNotFound), ipc.CodeNotFound, nil},
		{context.DeadlineExceeded, ipc.CodeTimeout, nil},
		{ipc.Errorf(ipc.CodeLimitReached, "five"), ipc.CodeLimitReached, nil},
	} {
		got := MapError(tc.err)
		if got == nil || got.Code != tc.code {
			t.Errorf("MapError(%v) = %v, want code %s", tc.err, got, tc.code)
			continue
		}
		if (tc.retries == nil) != (got.RetriesLeft == nil) || (tc.retries != nil && *tc.retries != *got.RetriesLeft) {
			t.Errorf("MapError(%v) retries = %v, want %v", tc.err, got.RetriesLeft, tc.retries)
		}
		if got.Code.HTTPStatus() < 400 {
			t.Errorf("%s maps to HTTP %d", got.Code, got.Code.HTTPStatus())
		}
	}
	if MapError(errors.New("something else")) != nil {
		t.Error("an unknown error must be left to the server (internal)")
	}
}

func TestPINNowBlockedOnlyOnLastTry(t *testing.T) {
	if !pinNowBlocked(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: 0}) {
		t.Error("last try spent: not reported")
	}
	if pinNowBlocked(&hwerr.PINIncorrect{What: "PIN", RetriesLeft: 1}) || pinNowBlocked(hwerr.ErrPINBlocked) || pinNowBlocked(&hwerr.PINIncorrect{What: "PUK", RetriesLeft: 0}) {
		t.Error("pin-blocked announced for an attempt that did not block the PIN")
	}
}
