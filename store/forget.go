package store

import (
	"context"
	"errors"
	"fmt"
)

// Removal is a registration removed because its authenticator is gone for
// good (a deleted virtual smart card), with the user's default afterwards
// ("" when none is left).
type Removal struct {
	Registration Registration
	Default      string
}

// CardForgetter is a DeviceState that is also the registry (the embedded
// store): it deletes a virtual card's record and every registration of its
// authenticator, moving defaults as RemoveRegistration does, in one
// transaction. A card and registrations already gone are not an error.
type CardForgetter interface {
	ForgetCard(ctx context.Context, cardID, authenticatorID string) ([]Removal, error)
}

// ForgetCard deletes a deleted virtual card's registrations (every user's,
// moving each user's default, R7) and its record. Where state is the
// registry itself and a CardForgetter, that is one transaction. Otherwise
// (a shared PostgreSQL registry beside the device-local state) the
// registrations go first and the record after, each step idempotent: a run
// cut short by a crash leaves the record, which says what is left to do,
// and running ForgetCard again completes it.
func ForgetCard(ctx context.Context, reg Store, state DeviceState, cardID, authenticatorID string) ([]Removal, error) {
	if f, ok := state.(CardForgetter); ok && any(reg) == any(state) {
		return f.ForgetCard(ctx, cardID, authenticatorID)
	}
	regs, err := reg.FindByAuthenticator(ctx, authenticatorID)
	if err != nil {
		return nil, err
	}
	var out []Removal
	for _, r := range regs {
		def, err := reg.RemoveRegistration(ctx, r.User, r.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return out, fmt.Errorf("remove the deleted card's registrations: %w", err)
		}
		out = append(out, Removal{Registration: r, Default: def})
	}
	if err := state.DeleteCard(ctx, cardID); err != nil && !errors.Is(err, ErrNotFound) {
		return out, err
	}
	return out, nil
}
