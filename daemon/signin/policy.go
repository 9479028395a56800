package signin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/store"
)

// Requirements compares what the policy asks a user to register before
// they may sign in (R13) with what they have: the answer to a setup
// client's "what must this user still register?".
type Requirements struct {
	User string
	// RequiredCount is how many authenticators the policy asks for.
	RequiredCount int
	// RequiredKinds, when not empty: at least one must be of these kinds.
	RequiredKinds []string
	// Registered is how many the user has.
	Registered int
	// MissingCount is how many more the user must register.
	MissingCount int
	// MissingOneOf, when not empty: one of the missing ones must be of one
	// of these kinds.
	MissingOneOf []string
	// Message says what is missing in a sentence for people (empty when
	// nothing is).
	Message string
}

// Satisfied reports whether nothing is missing.
func (r Requirements) Satisfied() bool { return r.MissingCount == 0 }

// RequirementsOf compares user's registrations with the policy p.
func RequirementsOf(p config.Policy, user string, regs []store.Registration) Requirements {
	kinds := make([]string, len(regs))
	for i, reg := range regs {
		kinds[i] = reg.Kind
	}
	count, oneOf := p.Missing(kinds)
	req := Requirements{
		User:          user,
		RequiredCount: p.RequiredCount,
		RequiredKinds: slices.Clone(p.RequiredKinds),
		Registered:    len(regs),
		MissingCount:  count,
		MissingOneOf:  slices.Clone(oneOf),
	}
	if p.RequireRegistration {
		req.RequiredCount = max(req.RequiredCount, 1)
	}
	if count > 0 {
		req.Message = missingMessage(count, oneOf, p.SelfService)
	}
	return req
}

// RegistrationRequiredError refuses the sign-in of a user who has not
// registered what the policy asks for (R13).
type RegistrationRequiredError struct {
	Requirements
}

func (e *RegistrationRequiredError) Error() string { return e.Message }

// CheckRequirements returns a *RegistrationRequiredError when user's
// registrations do not meet the policy p.
func CheckRequirements(p config.Policy, user string, regs []store.Registration) error {
	if req := RequirementsOf(p, user, regs); !req.Satisfied() {
		return &RegistrationRequiredError{Requirements: req}
	}
	return nil
}

// KindNotAllowedError refuses a kind of authenticator the policy forbids
// (R12).
type KindNotAllowedError struct {
	Kind string
}

func (e *KindNotAllowedError) Error() string {
	return fmt.Sprintf("your organisation does not allow %s authenticators; use another kind or contact your administrator", e.Kind)
}

// CheckKind returns a *KindNotAllowedError unless the policy p allows kind.
func CheckKind(p config.Policy, kind string) error {
	if !p.KindAllowed(kind) {
		return &KindNotAllowedError{Kind: kind}
	}
	return nil
}

// missingMessage says in words of the Entra seed what is missing and how to
// set it up (selfService: the user may register it themselves).
func missingMessage(count int, oneOf []string, selfService bool) string {
	what := "one more smart card, virtual smart card or security key"
	if count > 1 {
		what = CountWord(count) + " more smart cards, virtual smart cards or security keys"
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
	if !selfService {
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

// CountWord spells small counts as the source documents do ("five").
func CountWord(n int) string {
	words := []string{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"}
	if n >= 0 && n < len(words) {
		return words[n]
	}
	return fmt.Sprint(n)
}
