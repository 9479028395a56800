package e2e

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/store"
)

// Accounts every Debian system has, standing for people in these tests.
const (
	alice      = "daemon" // uid 1
	aliceUID   = 1
	mallory    = "nobody"
	malloryUID = 65534
)

// register registers the card to user as root (an admin).
func (h *harness) register(c *card, user string) *ipc.Registration {
	h.t.Helper()
	reg, err := h.c.Register(ctxT(h.t), user, ipc.RegisterRequest{Authenticator: c.id, PIN: ipc.Secret(pivcard.DefaultPIN)})
	if err != nil {
		h.t.Fatalf("register %s to %s: %v", c.id, user, err)
	}
	return reg
}

func TestFiveAuthenticatorsDefaultMovesOnRemoval(t *testing.T) {
	h := start(t)
	ctx := ctxT(t)
	var regs []*ipc.Registration
	for i := range 5 {
		c := h.insert(1, pivcard.Options{Label: fmt.Sprintf("Card %d", i)})
		regs = append(regs, h.register(c, alice))
		h.waitFor("registration-added", func(e ipc.Event) bool {
			return e.Type == ipc.EventRegistrationAdded && e.User == alice && e.Authenticator == c.id
		})
		h.remove(c)
	}
	if !regs[0].Default || regs[1].Default {
		t.Fatalf("the first registration must be the default: %+v", regs[:2])
	}
	sixth := h.insert(1, pivcard.Options{Label: "Sixth"})
	_, err := h.c.Register(ctx, alice, ipc.RegisterRequest{Authenticator: sixth.id, PIN: ipc.Secret(pivcard.DefaultPIN)})
	if apiCode(err) != ipc.CodeLimitReached {
		t.Fatalf("sixth registration: %v", err)
	}
	for _, want := range []string{"five", "contact your administrator to delete one"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("limit message %q lacks %q", err.Error(), want)
		}
	}
	if st := cardPIN(t, sixth); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Errorf("a refused registration spent a PIN try: %+v", st)
	}

	list, err := h.c.Registrations(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Registrations) != 5 || list.Limit != 5 || list.Default != regs[0].ID {
		t.Fatalf("registrations: %+v", list)
	}
	if err := h.c.SetDefault(ctx, alice, regs[2].ID); err != nil {
		t.Fatal(err)
	}
	removed, err := h.c.RemoveRegistration(ctx, alice, regs[2].ID)
	if err != nil {
		t.Fatal(err)
	}
	if removed.Default != regs[0].ID {
		t.Fatalf("removing the default moved it to %q, want the oldest %q", removed.Default, regs[0].ID)
	}
	// With a place free again the sixth card can be registered.
	h.register(sixth, alice)
	if _, err := h.c.RemoveRegistration(ctx, alice, "no-such-id"); apiCode(err) != ipc.CodeNotFound {
		t.Fatalf("removing an unknown registration: %v", err)
	}
}

// TestConcurrentRegistrationsRespectTheLimit: with four places taken, twenty
// concurrent registrations of two present cards give exactly one success.
func TestConcurrentRegistrationsRespectTheLimit(t *testing.T) {
	h := start(t)
	for i := range 4 {
		if _, err := h.store.AddRegistration(ctxT(t), store.Registration{
			User: alice, AuthenticatorID: fmt.Sprintf("piv-seed%d", i), Kind: store.KindSmartcard,
			Backend: store.BackendPIV, KeyID: "9a", PublicKey: []byte{1},
		}, 5, false); err != nil {
			t.Fatal(err)
		}
	}
	cards := []*card{h.insert(0, pivcard.Options{}), h.insert(1, pivcard.Options{})}
	var wg sync.WaitGroup
	results := make(chan error, 20)
	for i := range 20 {
		wg.Go(func() {
			_, err := h.c.Register(ctxT(t), alice, ipc.RegisterRequest{Authenticator: cards[i%2].id, PIN: ipc.Secret(pivcard.DefaultPIN)})
			results <- err
		})
	}
	wg.Wait()
	close(results)
	ok := 0
	for err := range results {
		switch apiCode(err) {
		case "":
			if err != nil {
				t.Errorf("unexpected error: %v", err)
			}
			ok++
		case ipc.CodeLimitReached, ipc.CodeAlreadyRegistered:
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	n, err := h.store.CountRegistrations(ctxT(t), alice)
	if err != nil {
		t.Fatal(err)
	}
	if ok != 1 || n != 5 {
		t.Fatalf("%d registrations succeeded, %d stored; want 1 and 5", ok, n)
	}
}

func TestKindPolicyAndSelfService(t *testing.T) {
	h := start(t, func(c *config.Config) {
		c.Policy.AllowedKinds = []string{ipc.KindSecurityKey}
		c.Policy.SelfService = false
	})
	c := h.insert(0, pivcard.Options{})
	if _, err := h.c.Register(ctxT(t), alice, ipc.RegisterRequest{Authenticator: c.id, PIN: ipc.Secret(pivcard.DefaultPIN)}); apiCode(err) != ipc.CodeKindNotAllowed {
		t.Fatalf("forbidden kind: %v", err)
	}
	body := fmt.Sprintf(`{"authenticator": %q, "pin": %q}`, c.id, pivcard.DefaultPIN)
	got := runAs(t, malloryUID, malloryUID, h.socket, []call{{Method: "POST", Path: "/v1/users/" + mallory + "/registrations", Body: body}})
	if errorCode(got[0].Answer) != "unauthorized" {
		t.Fatalf("self-registration with self-service off: %d %s", got[0].Status, got[0].Answer)
	}
}

// TestAnotherUserCannotReachYourData runs a client as another uid.
func TestAnotherUserCannotReachYourData(t *testing.T) {
	h := start(t)
	mine := h.insert(0, pivcard.Options{Label: "Alice"})
	reg := h.register(mine, alice)
	free := h.insert(1, pivcard.Options{Label: "Mallory"})
	session, err := h.c.SignIn(ctxT(t), ipc.SignInRequest{User: alice, PIN: ipc.Secret(pivcard.DefaultPIN)})
	if err != nil {
		t.Fatal(err)
	}
	// Mallory guesses wrong PINs: any of them reaching alice's card would
	// cost her a try.
	const guess = "999999"
	d := sha256.Sum256([]byte("x"))
	sign := fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q, "pin": %q}`, base64.StdEncoding.EncodeToString(d[:]), guess)
	pin := fmt.Sprintf(`{"pin": %q}`, guess)
	calls := runAs(t, malloryUID, malloryUID, h.socket, []call{
		{Method: "GET", Path: "/v1/status"},                                                                                                                   // 0 anyone
		{Method: "GET", Path: "/v1/authenticators"},                                                                                                           // 1 anyone
		{Method: "GET", Path: "/v1/users/" + alice + "/registrations"},                                                                                        // 2
		{Method: "DELETE", Path: "/v1/users/" + alice + "/registrations/" + reg.ID},                                                                           // 3
		{Method: "PUT", Path: "/v1/users/" + alice + "/default", Body: `{"registration": "x"}`},                                                               // 4
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/pin/verify", Body: pin},                                                                    // 5
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/sign", Body: sign},                                                                         // 6
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/pin/unblock", Body: `{"puk": "12345678", "new_pin": "123456"}`},                            // 7 admin
		{Method: "POST", Path: "/v1/sign-in", Body: fmt.Sprintf(`{"user": %q, "pin": %q}`, alice, pivcard.DefaultPIN)},                                        // 8
		{Method: "GET", Path: "/v1/sessions"},                                                                                                                 // 9 own only
		{Method: "POST", Path: "/v1/users/" + alice + "/forget"},                                                                                              // 10
		{Method: "GET", Path: "/v1/users/" + alice + "/links"},                                                                                                // 11 admin
		{Method: "POST", Path: "/v1/users/" + mallory + "/registrations", Body: fmt.Sprintf(`{"authenticator": %q, "pin": %q}`, mine.id, guess)},              // 12 someone else's card
		{Method: "POST", Path: "/v1/users/" + mallory + "/registrations", Body: fmt.Sprintf(`{"authenticator": %q, "pin": %q}`, free.id, pivcard.DefaultPIN)}, // 13 own, self-service
		{Method: "POST", Path: "/v1/authenticators/" + free.id + "/pin/verify", Body: fmt.Sprintf(`{"pin": %q}`, pivcard.DefaultPIN)},                         // 14 now registered to mallory
		{Method: "GET", Path: "/v1/events?since=1"},                                                                                                           // 15 history, filtered
		{Method: "DELETE", Path: "/v1/sessions/" + session.ID},                                                                                                // 16 someone else\'s session
	})
	for i, want := range map[int]string{2: "unauthorized", 3: "unauthorized", 4: "unauthorized", 5: "unauthorized",
		6: "unauthorized", 7: "unauthorized", 8: "unauthorized", 10: "unauthorized", 11: "unauthorized", 12: "registered_to_another_user",
		16: "not_found"} {
		if errorCode(calls[i].Answer) != want {
			t.Errorf("call %d %s %s: %d %s, want %s", i, calls[i].Method, calls[i].Path, calls[i].Status, calls[i].Answer, want)
		}
	}
	for _, i := range []int{0, 1, 9, 13, 14, 15} {
		if calls[i].Status >= 300 {
			t.Errorf("call %d %s %s: %d %s", i, calls[i].Method, calls[i].Path, calls[i].Status, calls[i].Answer)
		}
	}
	if strings.Contains(calls[9].Answer, alice) {
		t.Errorf("another user's session is visible: %s", calls[9].Answer)
	}
	if strings.Contains(calls[15].Answer, `"user":"`+alice+`"`) {
		t.Errorf("another user's events are visible: %s", calls[15].Answer)
	}
	if !strings.Contains(calls[15].Answer, `"user":"`+mallory+`"`) {
		t.Errorf("own registration event missing: %s", calls[15].Answer)
	}
	// Nothing was changed on alice's side, and her card spent no try.
	if sessions, err := h.c.Sessions(ctxT(t)); err != nil || len(sessions) != 1 || sessions[0].ID != session.ID {
		t.Fatalf("alice's session after mallory's attempt: %+v %v", sessions, err)
	}
	list, err := h.c.Registrations(ctxT(t), alice)
	if err != nil || len(list.Registrations) != 1 {
		t.Fatalf("alice's registrations: %+v %v", list, err)
	}
	if st := cardPIN(t, mine); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("alice's card spent a try: %+v", st)
	}
}

// TestSignInGroupCannotUseAnothersCard (issue 13, item 7): the sign-in
// service signs users in and sees their registrations and sessions, but may
// not change another user's PIN, sign with their card, set their default or
// forget for them; none of its guesses reach the card.
func TestSignInGroupCannotUseAnothersCard(t *testing.T) {
	// mallory's primary group (nogroup, gid 65534) is the sign-in group.
	h := start(t, func(c *config.Config) { c.Access.SignInGroup = "nogroup" })
	mine := h.insert(0, pivcard.Options{Label: "Alice"})
	reg := h.register(mine, alice)
	const guess = "999999"
	d := sha256.Sum256([]byte("x"))
	calls := runAs(t, malloryUID, malloryUID, h.socket, []call{
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/pin/change", Body: fmt.Sprintf(`{"pin": %q, "new_pin": "654321"}`, guess)},
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/pin/verify", Body: fmt.Sprintf(`{"pin": %q}`, guess)},
		{Method: "POST", Path: "/v1/authenticators/" + mine.id + "/sign", Body: fmt.Sprintf(`{"key": "9a", "algorithm": "ecdsa-sha256", "digest": %q, "pin": %q}`, base64.StdEncoding.EncodeToString(d[:]), guess)},
		{Method: "PUT", Path: "/v1/users/" + alice + "/default", Body: fmt.Sprintf(`{"registration": %q}`, reg.ID)},
		{Method: "POST", Path: "/v1/users/" + alice + "/forget"},
		{Method: "GET", Path: "/v1/users/" + alice + "/registrations"},                                                 // allowed
		{Method: "POST", Path: "/v1/sign-in", Body: fmt.Sprintf(`{"user": %q, "pin": %q}`, alice, pivcard.DefaultPIN)}, // allowed
	})
	for i, c := range calls {
		want := "unauthorized"
		if i >= 5 {
			want = ""
		}
		if errorCode(c.Answer) != want {
			t.Errorf("%s %s as the sign-in group: %d %s, want %q", c.Method, c.Path, c.Status, c.Answer, want)
		}
	}
	if st := cardPIN(t, mine); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("alice's card spent a try: %+v", st)
	}
}
