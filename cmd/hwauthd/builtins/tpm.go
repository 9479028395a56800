package builtins

import (
	"context"

	"github.com/hwauthd/hwauthd/tpm"
	"github.com/hwauthd/hwauthd/tpm/vscbackend"
	"github.com/hwauthd/hwauthd/tpm/vscpiv"
)

func init() { tpmWiring = wireTPM }

// wireTPM adds the TPM virtual smart card backend; virtual cards keep their
// records in the device-local store, and their registrations (which go
// with a deleted card) in the registry.
func wireTPM(e env, set *Set) {
	cfg := e.cfg.TPM
	v := vscbackend.New(tpm.Config{
		Device:    cfg.Device,
		Simulator: cfg.Simulator,
		Policy: tpm.Policy{
			MinPINLength:     cfg.MinPINLength,
			MaxPINLength:     cfg.EffectiveMaxPINLength(),
			RequiredClasses:  cfg.PINRequiredClasses,
			ForbiddenClasses: cfg.PINForbiddenClasses,
			RequirePUK:       cfg.RequirePUK,
			PINTries:         cfg.PINTries,
			PUKTries:         cfg.PUKTries,
			MaxCards:         cfg.MaxCards,
		},
		OwnerAuthFile: cfg.OwnerAuthFile,
	}, e.reg, e.state, e.log.With("backend", "tpm"))
	// Virtual cards are also PIV cards in hwauthd's own pcscd readers.
	set.Backends = append(set.Backends, vscpiv.Present(v, vscpiv.PresentConfig{
		Readers: cfg.PresentReaders, Socket: cfg.ReaderSocket, Unpresented: cfg.UnpresentedCards,
		Owners: func(ctx context.Context, id string) ([]string, error) {
			regs, err := e.reg.FindByAuthenticator(ctx, id)
			users := make([]string, 0, len(regs))
			for _, r := range regs {
				users = append(users, r.User)
			}
			return users, err
		},
	}, e.log.With("backend", "tpm", "part", "pcsc-readers")))
	set.VirtualCards = v
}
