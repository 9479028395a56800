package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// TestCardPINAndSignRoutes: the PIN and sign routes refuse malformed
// requests with bad_request before any secret reaches the card; change and
// unblock change the card's PIN; sign needs the PIN, except within a
// sign-in session with signin.cache_pin, and its signature verifies with the
// card's key; an absent card is not_found.
func TestCardPINAndSignRoutes(t *testing.T) {
	h := daemontest.New(t, func(c *config.Config) { c.SignIn.CachePIN = true })
	h.AddUser("alice")
	alice, root, ctx := h.Client("alice"), h.Client("root"), context.Background()
	card := h.Insert(daemontest.CardOptions{Label: "alice's card"})
	if _, err := alice.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("to sign"))
	seen := card.PINsSeen()
	for name, call := range map[string]func() error{
		"change without the PIN": func() error { _, err := alice.ChangePIN(ctx, card.ID(), nil, []byte("654321")); return err },
		"change without a new PIN": func() error {
			_, err := alice.ChangePIN(ctx, card.ID(), []byte(daemontest.PIN), nil)
			return err
		},
		"unblock without the PUK": func() error { _, err := root.UnblockPIN(ctx, card.ID(), nil, []byte("654321")); return err },
		"sign without a key": func() error {
			_, err := alice.Sign(ctx, card.ID(), ipc.SignRequest{Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: ipc.Secret(daemontest.PIN)})
			return err
		},
		"sign with an unknown algorithm": func() error {
			_, err := alice.Sign(ctx, card.ID(), ipc.SignRequest{Key: "9a", Algorithm: "md5", Digest: digest[:], PIN: ipc.Secret(daemontest.PIN)})
			return err
		},
		"sign a short digest": func() error {
			_, err := alice.Sign(ctx, card.ID(), ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha384", Digest: digest[:], PIN: ipc.Secret(daemontest.PIN)})
			return err
		},
	} {
		if err := call(); !isCode(err, ipc.CodeBadRequest) {
			t.Errorf("%s: %v, want bad_request", name, err)
		}
	}
	if card.PINsSeen() != seen || card.PUKsSeen() != 0 {
		t.Fatalf("refused requests reached the card: %d PINs, %d PUKs", card.PINsSeen()-seen, card.PUKsSeen())
	}

	sign := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: digest[:]}
	if _, err := alice.Sign(ctx, card.ID(), sign); !isCode(err, ipc.CodePINRequired) {
		t.Fatalf("sign without a PIN and without a session: %v", err)
	}
	if res, err := alice.ChangePIN(ctx, card.ID(), []byte(daemontest.PIN), []byte("654321")); err != nil || !res.Verified {
		t.Fatalf("change: %+v %v", res, err)
	}
	if res, err := root.UnblockPIN(ctx, card.ID(), []byte(daemontest.PUK), []byte("112233")); err != nil || res.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("unblock: %+v %v", res, err)
	}
	if _, err := alice.VerifyPIN(ctx, card.ID(), []byte("112233")); err != nil {
		t.Fatalf("the PIN set by unblock: %v", err)
	}
	if _, err := alice.SignIn(ctx, ipc.SignInRequest{User: "alice", PIN: ipc.Secret("112233")}); err != nil {
		t.Fatal(err)
	}
	sig, err := alice.Sign(ctx, card.ID(), sign)
	if err != nil || !ecdsa.VerifyASN1(card.Public(), digest[:], sig) {
		t.Fatalf("sign with the session's cached PIN: %v", err)
	}
	if _, err := alice.VerifyPIN(ctx, "piv-absent", []byte("112233")); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("verify on an absent card: %v", err)
	}
}

// TestReaders: a reader a backend reports is listed and announced once,
// its card's presence is updated without a second announcement, and a
// reader that goes is announced and no longer listed.
func TestReaders(t *testing.T) {
	h := daemontest.New(t)
	alice, ctx := h.Client("alice"), context.Background()
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	events, err := alice.Events(wait, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer events.Close()
	for e := (ipc.Event{}); e.Type != ipc.EventSnapshotDone; {
		if e, err = events.Next(); err != nil {
			t.Fatalf("snapshot: %v", err)
		}
	}
	m := h.Daemon.Manager()
	m.SetReader(device.Reader{Name: "Test PCD 00 00"})
	m.SetReader(device.Reader{Name: "Test PCD 00 00", CardPresent: true})
	readers, err := alice.Readers(ctx)
	if err != nil || len(readers) != 1 || !readers[0].CardPresent {
		t.Fatalf("readers: %+v %v", readers, err)
	}
	m.RemoveReader("Test PCD 00 00")
	m.RemoveReader("never seen")
	if readers, err := alice.Readers(ctx); err != nil || len(readers) != 0 {
		t.Fatalf("readers after removal: %+v %v", readers, err)
	}
	var got []string
	for len(got) < 2 {
		e, err := events.Next()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		if e.Reader != "" {
			got = append(got, e.Type+" "+e.Reader)
		}
	}
	if got[0] != ipc.EventReaderAdded+" Test PCD 00 00" || got[1] != ipc.EventReaderRemoved+" Test PCD 00 00" {
		t.Errorf("reader events: %q", got)
	}
}

// TestLinkRefusals: a link needs a known kind of identity with a value and
// an existing account; an identity linked to one account cannot be linked
// to another; removing a link that does not exist is not_found.
func TestLinkRefusals(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	h.AddUser("bob")
	root, ctx := h.Client("root"), context.Background()
	for _, tc := range []struct {
		user, identity string
		code           ipc.Code
	}{
		{"alice", "upn:", ipc.CodeBadRequest},
		{"alice", "upn:   ", ipc.CodeBadRequest},
		{"alice", "phone:+1555", ipc.CodeBadRequest},
		{"ghost", "upn:ghost@example.com", ipc.CodeNotFound},
	} {
		if _, err := root.Link(ctx, tc.user, tc.identity); !isCode(err, tc.code) {
			t.Errorf("link %q to %s: %v, want %s", tc.identity, tc.user, err, tc.code)
		}
	}
	link, err := root.Link(ctx, "alice", "email:alice@example.com")
	if err != nil || link.Identity != "email:alice@example.com" || link.CreatedBy != "root" {
		t.Fatalf("link: %+v %v", link, err)
	}
	if _, err := root.Link(ctx, "bob", "email:alice@example.com"); !isCode(err, ipc.CodeAlreadyRegistered) {
		t.Errorf("alice's identity linked to bob: %v", err)
	}
	if err := root.Unlink(ctx, "alice", "cn:nobody"); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("unlink what is not linked: %v", err)
	}
	if list, err := root.Links(ctx, "bob"); err != nil || len(list.Links) != 0 {
		t.Errorf("bob's links after the refusal: %+v %v", list, err)
	}
}

// TestEventsResume: a watcher resumes after the last sequence number it
// saw and gets the events it missed; a since that is not a number is
// bad_request; one older than the kept history is events_expired; a sign-in
// for an unknown account or without a PIN is refused before any card is
// tried.
func TestEventsResume(t *testing.T) {
	h := daemontest.New(t, func(c *config.Config) { c.API.EventHistory = 2 })
	m, alice, ctx := h.Daemon.Manager(), h.Client("alice"), context.Background()
	for _, name := range []string{"r1", "r2", "r3", "r4"} {
		m.SetReader(device.Reader{Name: name})
	}
	wait, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	events, err := alice.Events(wait, 2)
	if err != nil {
		t.Fatal(err)
	}
	e, err := events.Next()
	events.Close()
	if err != nil || e.Seq != 3 || e.Reader != "r3" {
		t.Fatalf("resumed after 2: %+v %v", e, err)
	}
	expired, err := alice.Events(wait, 1)
	if err == nil {
		_, err = expired.Next()
		expired.Close()
	}
	if !isCode(err, ipc.CodeEventsExpired) {
		t.Errorf("resume after an event no longer kept: %v", err)
	}
	resp, err := h.HTTP("alice").Get("http://hwauthd/v1/events?since=last")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("since=last: HTTP %d", resp.StatusCode)
	}

	root := h.Client("root")
	card := h.Insert(daemontest.CardOptions{})
	if _, err := root.SignIn(ctx, ipc.SignInRequest{User: "ghost", PIN: ipc.Secret(daemontest.PIN)}); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("sign in an unknown account: %v", err)
	}
	if _, err := root.SignIn(ctx, ipc.SignInRequest{User: "alice"}); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("sign in without a PIN: %v", err)
	}
	if card.PINsSeen() != 0 {
		t.Errorf("refused sign-ins reached the card: %d PINs", card.PINsSeen())
	}
}

// downBackend is a backend whose service is down (pcscd not running): it
// has enumerated, found nothing, and says why.
type downBackend struct{ first device.FirstScan }

func (b *downBackend) Name() string                                 { return "pcsc" }
func (b *downBackend) IDPrefix() string                             { return "piv-" }
func (b *downBackend) Enumerated() <-chan struct{}                  { return b.first.Enumerated() }
func (b *downBackend) Run(ctx context.Context, _ device.Host) error { <-ctx.Done(); return nil }
func (b *downBackend) Status() device.Status {
	return device.Status{State: device.StateDown, Detail: "pcscd is not running"}
}

// TestAbsentWhileBackendDown: a card of a backend that is down answers
// backend_unavailable naming the backend's state, not not_found; an id no
// down backend claims is still not_found.
func TestAbsentWhileBackendDown(t *testing.T) {
	b := &downBackend{}
	b.first.Done()
	h := daemontest.NewWith(t, daemontest.Fakes{Backends: []device.Backend{b}})
	alice, ctx := h.Client("alice"), context.Background()
	var e *ipc.Error
	if _, err := alice.VerifyPIN(ctx, "piv-0001", []byte(daemontest.PIN)); !errors.As(err, &e) || e.Code != ipc.CodeBackendUnavailable || !strings.Contains(e.Message, "pcscd is not running") {
		t.Errorf("a card of the down backend: %v", err)
	}
	if _, err := alice.VerifyPIN(ctx, "fido-0001", []byte(daemontest.PIN)); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("a key of no down backend: %v", err)
	}
}
