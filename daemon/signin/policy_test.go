package signin

import (
	"slices"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/store"
)

// TestRequirements: what a user with one smart card must still register
// under each policy, and the sentence that says it (the Entra seed's
// words); a policy that is met refuses nothing.
func TestRequirements(t *testing.T) {
	regs := []store.Registration{{Kind: "smartcard"}}
	const prefix = "You haven't set up the security info required by your organization: you need "
	for _, tc := range []struct {
		name     string
		policy   func(*config.Policy)
		required int
		count    int
		oneOf    []string
		message  string // after prefix, "" when met
	}{
		{"nothing asked", func(*config.Policy) {}, 0, 0, nil, ""},
		{"registration required", func(p *config.Policy) { p.RequireRegistration = true }, 1, 0, nil, ""},
		{"one more", func(p *config.Policy) { p.RequiredCount = 2 }, 2, 1, nil,
			"one more smart card, virtual smart card or security key, so register it with hwauthctl register, then sign in again."},
		{"eleven more", func(p *config.Policy) { p.RequiredCount = 12 }, 12, 11, nil,
			"11 more smart cards, virtual smart cards or security keys, so register them with hwauthctl register, then sign in again."},
		{"a kind", func(p *config.Policy) { p.RequiredKinds = []string{"virtual-smartcard", "security-key"} }, 0, 1,
			[]string{"virtual-smartcard", "security-key"},
			"a virtual smart card or security key, so register it with hwauthctl register, then sign in again."},
		{"three more, one of a kind, through IT", func(p *config.Policy) {
			p.RequiredCount, p.RequiredKinds, p.SelfService = 4, []string{"security-key"}, false
		}, 4, 3, []string{"security-key"},
			"three more smart cards, virtual smart cards or security keys, one of them a security key, so ask your administrator to register it for you."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := config.Defaults().Policy
			tc.policy(&p)
			req := RequirementsOf(p, "alice", regs)
			want := ""
			if tc.message != "" {
				want = prefix + tc.message
			}
			if req.User != "alice" || req.Registered != 1 || req.RequiredCount != tc.required || req.MissingCount != tc.count ||
				req.Satisfied() != (tc.count == 0) || !slices.Equal(req.MissingOneOf, tc.oneOf) || req.Message != want {
				t.Fatalf("requirements %+v\nwant required %d, missing %d of %v, message %q", req, tc.required, tc.count, tc.oneOf, want)
			}
			err := CheckRequirements(p, "alice", regs)
			if tc.count == 0 {
				if err != nil {
					t.Fatalf("met, but refused: %v", err)
				}
				return
			}
			if e := wantError[*RegistrationRequiredError](t, err); e.Error() != want || e.MissingCount != tc.count {
				t.Errorf("refusal %+v", e)
			}
		})
	}
}

// TestCheckKind: a kind the policy does not list is refused, with the kind
// named.
func TestCheckKind(t *testing.T) {
	p := config.Defaults().Policy
	p.AllowedKinds = []string{"smartcard"}
	if err := CheckKind(p, "smartcard"); err != nil {
		t.Errorf("allowed kind refused: %v", err)
	}
	e := wantError[*KindNotAllowedError](t, CheckKind(p, "security-key"))
	if e.Kind != "security-key" || e.Error() != "your organisation does not allow security-key authenticators; use another kind or contact your administrator" {
		t.Errorf("refusal %+v: %q", e, e.Error())
	}
}
