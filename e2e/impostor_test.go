package e2e

import (
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vpcd"
)

// withCardAuth gives a card a card-authentication key (9E) beside 9A.
func withCardAuth(opts pivcard.Options) pivcard.Options {
	opts.Slots = []pivcard.SlotSpec{{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256}, {Slot: piv.SlotCardAuthentication, Alg: piv.KeyAlgP256}}
	return opts
}

// copyingCard is an impostor that answers the certificate reads with
// another card's certificates (public data anyone can copy) but signs with
// its own keys.
type copyingCard struct {
	*pivcard.Card
	from     *pivcard.Card
	chaining bool // a copied object is being sent in parts (GET RESPONSE)
}

func (c *copyingCard) Transmit(b []byte) []byte {
	copied := len(b) > 9 && b[1] == 0xCB && b[5] == 0x5C && b[7] == 0x5F && b[8] == 0xC1 && (b[9] == 0x05 || b[9] == 0x01)
	if copied || (c.chaining && len(b) > 1 && b[1] == 0xC0) {
		resp := c.from.Transmit(b)
		c.chaining = len(resp) >= 2 && resp[len(resp)-2] == 0x61
		return resp
	}
	c.chaining = false
	return c.Card.Transmit(b)
}

// listed returns the present authenticator with id, if any.
func listed(t *testing.T, h *harness, id string) (ipc.Authenticator, bool) {
	t.Helper()
	list, err := h.c.Authenticators(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range list {
		if a.ID == id {
			return a, true
		}
	}
	return ipc.Authenticator{}, false
}

// TestImpostorCardGetsNoPIN: a card that copies a registered card's GUID
// but has other keys and another PIN (issue #13, defect 3) is refused with
// authenticator_mismatch and an event on sign-in, PIN verification and
// signing, and its try counter shows that no PIN reached it. With the real
// card present at the same time both are listed; when the impostor leaves,
// the real card keeps its place and signs in.
func TestImpostorCardGetsNoPIN(t *testing.T) {
	h := start(t)
	owner := h.insert(0, withCardAuth(pivcard.Options{Label: "Owner"}))
	if a, _ := listed(t, h, owner.id); a.CardAuthentication != ipc.CardAuthVerified || !strings.HasPrefix(a.Device, "piv-9e:") {
		t.Fatalf("the owner's card: card_authentication %q, device %q", a.CardAuthentication, a.Device)
	}
	h.register(owner, "root")
	h.remove(owner)

	guid := owner.GUID()
	for _, tc := range []struct {
		name string
		opts pivcard.Options
		copy bool // the impostor shows the owner's certificates
	}{
		{"other keys, no 9E", pivcard.Options{GUID: guid[:], PIN: "87654321", Label: "Impostor"}, false},
		{"other keys and 9E", withCardAuth(pivcard.Options{GUID: guid[:], PIN: "87654321", Label: "Impostor"}), false},
		{"copied certificates", withCardAuth(pivcard.Options{GUID: guid[:], PIN: "87654321", Label: "Impostor"}), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pc, err := pivcard.New(tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			var vc vpcd.Card = pc
			if tc.copy {
				vc = &copyingCard{Card: pc, from: owner.Card}
			}
			imp := h.insertCard(1, pc, vc)
			if a, _ := listed(t, h, imp.id); tc.copy && a.CardAuthentication != ipc.CardAuthFailed {
				t.Fatalf("the copy's card authentication: %q, want failed", a.CardAuthentication)
			}
			if imp.id != owner.id {
				t.Fatalf("the impostor shows as %s, want the owner's id %s", imp.id, owner.id)
			}
			before := cardPIN(t, imp)
			attempts := map[string]func() error{
				"sign-in": func() error { _, err := h.signIn("root", pivcard.DefaultPIN); return err },
				"verify":  func() error { _, err := h.c.VerifyPIN(ctxT(t), imp.id, []byte(pivcard.DefaultPIN)); return err },
				"sign": func() error {
					_, err := h.c.Sign(ctxT(t), imp.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(pivcard.DefaultPIN)})
					return err
				},
			}
			for what, attempt := range attempts {
				if err := attempt(); apiCode(err) != ipc.CodeAuthenticatorMismatch {
					t.Errorf("%s with the impostor: %v, want authenticator_mismatch", what, err)
				}
				h.waitFor("authenticator-mismatch", func(e ipc.Event) bool {
					return e.Type == ipc.EventAuthenticatorMismatch && e.Authenticator == imp.id
				})
			}
			if after := cardPIN(t, imp); after.RetriesLeft != before.RetriesLeft || after.Verified {
				t.Fatalf("the owner's PIN reached the impostor: tries %v -> %v, verified %v", before.RetriesLeft, after.RetriesLeft, after.Verified)
			}
			h.remove(imp)
		})
	}

	// Both present at once: both listed, under ids of their own.
	imp := h.insert(1, pivcard.Options{GUID: guid[:], PIN: "87654321", Label: "Impostor"})
	if err := owner.slot.Insert(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	twin := h.waitFor("the owner's card beside the impostor", func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && e.Reader == h.pcsc.ReaderName(0)
	}).Authenticator
	if twin == imp.id {
		t.Fatalf("both cards share the id %s", twin)
	}
	if _, ok := listed(t, h, imp.id); !ok {
		t.Fatal("the first card left the list when the second came")
	}
	// The impostor leaves: the owner's card is listed under its own id again
	// and signs in.
	h.remove(imp)
	h.waitFor("the owner's card under its id", func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && e.Authenticator == owner.id
	})
	if _, err := h.signIn("root", pivcard.DefaultPIN); err != nil {
		t.Fatalf("sign-in with the owner's card: %v", err)
	}
}
