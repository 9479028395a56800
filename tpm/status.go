package tpm

import (
	"context"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Lockout is the TPM's dictionary-attack state (TPM 2.0 Part 1 §19.8):
// machine-wide, for objects without noDA. Virtual card PINs are exempt
// (their indices are TPMA_NV_NO_DA and count on their own), so this is for
// IT: a TPM in lockout refuses other software's DA-protected keys.
type Lockout struct {
	// MaxAuthFail is TPM_PT_MAX_AUTH_FAIL: failures before lockout.
	MaxAuthFail uint32
	// Counter is TPM_PT_LOCKOUT_COUNTER: current failures.
	Counter uint32
	// Interval is TPM_PT_LOCKOUT_INTERVAL: how long until one failure is
	// forgotten.
	Interval time.Duration
	// Recovery is TPM_PT_LOCKOUT_RECOVERY: how long lockoutAuth stays
	// unusable after a wrong one.
	Recovery time.Duration
	// InLockout is TPMA_PERMANENT's inLockout.
	InLockout bool
}

// Capacity is what the TPM says about its room for more cards. A TPM does
// not report free NV bytes, so CardsLeft is an estimate: see cardCost.
type Capacity struct {
	// PersistentAvail is TPM_PT_HR_PERSISTENT_AVAIL, the TPM's own
	// estimate of how many more persistent objects fit in its NV memory.
	PersistentAvail int
	// NVIndices is TPM_PT_HR_NV_INDEX, the NV indices defined (all owners).
	NVIndices int
	// HandlesLeft is how many more cards hwauthd's NV handle range holds.
	HandlesLeft int
	// CardsLeft estimates how many more cards fit: the smaller of
	// HandlesLeft and what PersistentAvail leaves room for (see cardCost).
	CardsLeft int
}

// How PersistentAvail translates into cards, measured on libtpms (swtpm
// 0.7.1, Debian 12; TestCapacity checks it): a card (two 8-byte PIN Fail
// indices) costs about cardCost units of TPM_PT_HR_PERSISTENT_AVAIL, and
// the last persistentReserve units never take an index. Fitted to two
// fills: a fresh TPM (64 units) took 473 cards before TPM_RC_NV_SPACE, and
// a TPM filled with 2 KiB indices down to 6 units took 6. Other TPMs store
// indices differently and have less NV: there the figure is an estimate,
// and TPM_RC_NV_SPACE (tpm_full) is the final word.
const (
	cardCost          = 0.1242
	persistentReserve = 5.25
)

// State is the TPM's lockout and capacity, read at start and for
// /v1/status.
type State struct {
	Lockout  Lockout
	Capacity Capacity
}

// State reads the TPM's dictionary-attack state and capacity.
func (t *TPM) State(ctx context.Context) (State, error) {
	if err := t.lock(ctx); err != nil {
		return State{}, err
	}
	defer t.unlock()
	return t.stateLocked()
}

func (t *TPM) stateLocked() (State, error) {
	v, err := t.propertiesLocked(tpm2.TPMPTMaxAuthFail, tpm2.TPMPTLockoutCounter, tpm2.TPMPTLockoutInterval,
		tpm2.TPMPTLockoutRecovery, tpm2.TPMPTPermanent, tpm2.TPMPTHRPersistentAvail, tpm2.TPMPTHRNVIndex)
	if err != nil {
		return State{}, err
	}
	used, err := t.nvHandlesLocked()
	if err != nil {
		return State{}, err
	}
	const inLockout = 1 << 9 // TPMA_PERMANENT.inLockout, Part 2 §8.6
	c := Capacity{
		PersistentAvail: int(v[tpm2.TPMPTHRPersistentAvail]),
		NVIndices:       int(v[tpm2.TPMPTHRNVIndex]),
		HandlesLeft:     (nvHandleCount - len(used)) / 2,
	}
	c.CardsLeft = min(c.HandlesLeft, max(0, int((float64(c.PersistentAvail)-persistentReserve)/cardCost)))
	return State{
		Lockout: Lockout{
			MaxAuthFail: v[tpm2.TPMPTMaxAuthFail],
			Counter:     v[tpm2.TPMPTLockoutCounter],
			Interval:    time.Duration(v[tpm2.TPMPTLockoutInterval]) * time.Second,
			Recovery:    time.Duration(v[tpm2.TPMPTLockoutRecovery]) * time.Second,
			InLockout:   v[tpm2.TPMPTPermanent]&inLockout != 0,
		},
		Capacity: c,
	}, nil
}

// propertiesLocked reads TPM properties (TPM 2.0 Part 3 §30.2
// TPM2_GetCapability, TPM_CAP_TPM_PROPERTIES), one query each.
func (t *TPM) propertiesLocked(pts ...tpm2.TPMPT) (map[tpm2.TPMPT]uint32, error) {
	out := map[tpm2.TPMPT]uint32{}
	for _, pt := range pts {
		rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapTPMProperties, Property: uint32(pt), PropertyCount: 1}.Execute(t.tr)
		if err != nil {
			return nil, fmt.Errorf("read TPM properties: %w", classify(err))
		}
		props, err := rsp.CapabilityData.Data.TPMProperties()
		if err != nil {
			return nil, fmt.Errorf("read TPM properties: %w: %v", hwerr.ErrProtocol, err)
		}
		for _, p := range props.TPMProperty {
			if p.Property == pt {
				out[pt] = p.Value
			}
		}
	}
	return out, nil
}

// Ping checks that the TPM answers (one TPM2_GetCapability).
func (t *TPM) Ping(ctx context.Context) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	_, err := t.propertiesLocked(tpm2.TPMPTManufacturer)
	return err
}
