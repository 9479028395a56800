package tpm

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// CardFormat is the version of the Card record this engine writes and
// reads. Version 1 (per-card storage keys, software-kept counters) is not
// read: its counters were not the TPM's.
const CardFormat = 2

// Card is a TPM virtual smart card as the daemon stores it. It is plain
// data (JSON-friendly; []byte fields encode as base64): the engine never
// writes files, the daemon persists the Card it is given and gives it back.
// Nothing in it is secret, and nothing in it changes when a PIN is tried,
// changed or unblocked: the PIN, the PUK and their counters live in the
// TPM's NV indices, so an old copy of the record opens nothing the current
// one does not.
type Card struct {
	// Format is CardFormat.
	Format int `json:"format"`
	// ID is random, 16 bytes in hex.
	ID    string `json:"id"`
	Label string `json:"label"`
	// Algorithm is AlgECCP256, AlgECCP384 or AlgRSA2048.
	Algorithm string `json:"algorithm"`
	// DeviceID is the (*TPM).DeviceID of the TPM holding the card.
	DeviceID  string    `json:"device_id"`
	CreatedAt time.Time `json:"created_at"`

	// PIN is the PIN Fail index holding the PIN and its counter; PUK the
	// one holding the PUK, nil for a card created without PUK.
	PIN NVIndex  `json:"pin"`
	PUK *NVIndex `json:"puk,omitempty"`
	// ApproverName is the TPM name of the key that approved the policy
	// "old PIN changes the PIN" and ApprovalTicket the TPM's
	// TPMT_TK_VERIFIED for that approval (see branchApproved).
	ApproverName   []byte `json:"approver_name"`
	ApprovalTicket []byte `json:"approval_ticket"`
	// Salt is mixed into the PIN and PUK before they become authValues.
	Salt []byte `json:"salt"`
	// AdminKeyPublic is the admin key's public area (TPMT_PUBLIC), empty
	// for a card without admin key (see AdminChallenge).
	AdminKeyPublic []byte `json:"admin_key_public,omitempty"`

	// KeyPublic and KeyPrivate are the signing key's TPM2B_PUBLIC and
	// TPM2B_PRIVATE contents (TPMT_PUBLIC; the wrapped private area). The
	// key is a child of the storage key whose only authorization is
	// PolicySecret on the PIN index.
	KeyPublic  []byte `json:"key_public"`
	KeyPrivate []byte `json:"key_private"`

	// PublicKey is the signing key's public key, PKIX DER.
	PublicKey []byte `json:"public_key"`
	// Certificate is the imported certificate, DER; empty until imported.
	Certificate []byte `json:"certificate,omitempty"`

	// PINTries and PUKTries are the indices' pinLimit.
	PINTries int `json:"pin_tries"`
	PUKTries int `json:"puk_tries,omitempty"`
}

// CreateOptions describe a new virtual card.
type CreateOptions struct {
	Label string
	// PIN must meet the Policy; PUK too, or be empty when the Policy does
	// not require one (the card then has no PUK). CreateCard zeroes them.
	PIN, PUK []byte
	// Algorithm is AlgECCP256 (when empty), AlgECCP384 or AlgRSA2048.
	Algorithm string
	// AdminKey, when set, is IT's ECDSA P-256 admin key: responses signed
	// with it to the card's challenges unblock the PIN (AdminUnblock).
	AdminKey *ecdsa.PublicKey
	// Attest asks for a TPM2_Certify statement over the new key.
	Attest bool
	// Nonce is the verifier's qualifying data for the attestation, at
	// most 64 bytes.
	Nonce []byte
}

// maxNonce is the size of TPM2B_DATA's buffer: sizeof(TPMT_HA) with SHA-512.
const maxNonce = 64

// CreateCard creates a virtual card: a PUK index and a PIN index (PIN Fail
// NV indices with the policy's limits), and a signing key of
// opts.Algorithm under the storage key that only PolicySecret on the PIN
// index unlocks. With opts.Attest it also returns a TPM2_Certify
// statement by the attestation key over the new key, with opts.Nonce. The daemon checks the per-device limit with CanCreate first.
// A TPM without room for the indices is hwerr.ErrDeviceFull. It zeroes
// opts.PIN and opts.PUK.
func (t *TPM) CreateCard(ctx context.Context, opts CreateOptions) (*Card, *device.KeyAttestation, error) {
	defer clear(opts.PIN)
	defer clear(opts.PUK)
	if err := t.checkCreateOptions(&opts); err != nil {
		return nil, nil, err
	}
	if err := t.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer t.unlock()
	c := &Card{
		Format:    CardFormat,
		ID:        randomHex(16),
		Label:     opts.Label,
		Algorithm: opts.Algorithm,
		DeviceID:  t.deviceID,
		CreatedAt: time.Now().UTC(),
		Salt:      randomBytes(16),
		PINTries:  t.policy.PINTries,
	}
	att, err := t.createCardLocked(c, opts)
	if err != nil {
		t.tr.op = nil // clean up even when ctx has ended
		t.destroyLocked(c)
		return nil, nil, err
	}
	return c, att, nil
}

func (t *TPM) checkCreateOptions(opts *CreateOptions) error {
	if opts.Algorithm == "" {
		opts.Algorithm = AlgECCP256
	}
	if _, err := signingKeyTemplate(opts.Algorithm, nil); err != nil {
		return err
	}
	if len(opts.Nonce) > maxNonce {
		return fmt.Errorf("attestation nonce longer than %d bytes: %w", maxNonce, hwerr.ErrInvalidInput)
	}
	if err := t.policy.CheckPIN("PIN", opts.PIN); err != nil {
		return err
	}
	if len(opts.PUK) == 0 && !t.policy.RequirePUK {
		return nil
	}
	return t.policy.CheckPUK(opts.PUK)
}

func (t *TPM) createCardLocked(c *Card, opts CreateOptions) (*device.KeyAttestation, error) {
	hs, err := t.freeNVHandlesLocked(2)
	if err != nil {
		return nil, err
	}
	var pukName []byte
	if len(opts.PUK) > 0 {
		c.PUKTries = t.policy.PUKTries
		branches, err := pukIndexBranches(randomBytes(32))
		if err != nil {
			return nil, err
		}
		c.PUK, err = t.defineIndexLocked(hs[1], c.authValue(pukSecret, opts.PUK), branches, c.PUKTries)
		if err != nil {
			return nil, err
		}
		pukName = c.PUK.Name
	}
	approver, err := newApprover()
	if err != nil {
		return nil, err
	}
	c.ApproverName = approver.name
	var adminName []byte
	if opts.AdminKey != nil {
		pub, name, err := adminKeyPublic(opts.AdminKey)
		if err != nil {
			return nil, err
		}
		c.AdminKeyPublic, adminName = tpm2.Marshal(pub), name
	}
	branches, err := pinIndexBranches(pukName, approver.name, adminName)
	if err != nil {
		return nil, err
	}
	pin, err := t.defineIndexLocked(hs[0], c.authValue(pinSecret, opts.PIN), branches, c.PINTries)
	if pin != nil {
		c.PIN = *pin
	}
	if err != nil {
		return nil, err
	}
	if c.ApprovalTicket, err = t.approveLocked(approver, c.PIN.Name); err != nil {
		return nil, err
	}
	if err := t.createKeyLocked(c); err != nil {
		return nil, err
	}
	if !opts.Attest {
		return nil, nil
	}
	att, _, err := t.attestLocked(c, opts.Nonce)
	return att, err
}

// createKeyLocked creates the card's signing key under the storage key
// (TPM 2.0 Part 3 §12.1 TPM2_Create) with the PIN index policy, and
// records its blobs and public key in c.
func (t *TPM) createKeyLocked(c *Card) error {
	policy, err := keyPolicy(c.PIN.Name)
	if err != nil {
		return err
	}
	tmpl, err := signingKeyTemplate(c.Algorithm, policy)
	if err != nil {
		return err
	}
	t.dropKeysLocked() // TPM2_Create holds the storage key and the new object in two slots
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: t.srk.handle.Handle, Name: t.srk.handle.Name, Auth: tpm2.PasswordAuth(nil)},
		InPublic:     tpm2.New2B(tmpl),
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("create signing key: %w", classify(err))
	}
	c.KeyPublic = rsp.OutPublic.Bytes()
	c.KeyPrivate = rsp.OutPrivate.Buffer
	pub, err := publicKey(c.KeyPublic)
	if err != nil {
		return err
	}
	c.PublicKey, err = x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("encode public key: %w: %v", hwerr.ErrProtocol, err)
	}
	return nil
}

// publicKey parses a TPMT_PUBLIC (a card's KeyPublic) into a Go public key.
func publicKey(tpmtPublic []byte) (crypto.PublicKey, error) {
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](tpmtPublic)
	if err != nil {
		return nil, fmt.Errorf("parse TPM public area: %w: %v", hwerr.ErrInvalidInput, err)
	}
	key, err := tpm2.Pub(*pub)
	if err != nil {
		return nil, fmt.Errorf("parse TPM public area: %w: %v", hwerr.ErrInvalidInput, err)
	}
	return key, nil
}

// checkCardLocked checks that card can be used here: its format, its
// device, its indices (errCardGone when deleted).
func (t *TPM) checkCardLocked(card *Card) error {
	if err := t.checkRecord(card); err != nil {
		return err
	}
	if err := t.checkIndexLocked(&card.PIN); err != nil {
		return err
	}
	if card.PUK != nil {
		return t.checkIndexLocked(card.PUK)
	}
	return nil
}

// checkRecord checks what the record alone says: its format and device.
func (t *TPM) checkRecord(card *Card) error {
	if card.Format != CardFormat {
		return fmt.Errorf("virtual smart card record format %d (this version reads %d); delete the card and create it again: %w",
			card.Format, CardFormat, hwerr.ErrInvalidInput)
	}
	if card.DeviceID != t.deviceID {
		return errWrongDevice
	}
	return nil
}

// CheckCard tells whether card can be used on this TPM: hwerr.ErrWrongDevice
// when it was created on another device (its DeviceID differs, or its key
// blob fails TPM2_Load's integrity check), and hwerr.ErrRemoved when it
// was deleted (its PIN index is gone or is another one).
func (t *TPM) CheckCard(ctx context.Context, card *Card) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return err
	}
	_, err := t.cardKeyLocked(card)
	return err
}

// DestroyCard deletes card from the TPM for good: it deletes the card's
// PIN and PUK indices. The signing key's only authorization is
// PolicySecret on that PIN index, whose name no later index has (see
// pukIndexBranches), so no copy of the card's key blob can be used again,
// with or without the PIN (TPM 2.0 Part 3 §31.4 TPM2_NV_UndefineSpace). A
// card already destroyed is not an error. The daemon deletes its record
// after this returns nil.
func (t *TPM) DestroyCard(ctx context.Context, card *Card) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	if card.DeviceID != t.deviceID {
		return fmt.Errorf("delete virtual smart card: %w", errWrongDevice)
	}
	return t.destroyLocked(card)
}

// destroyLocked undefines the card's indices that are still its own.
func (t *TPM) destroyLocked(card *Card) error {
	t.forgetKeyLocked(card.KeyPublic)
	var errs []error
	for _, x := range []*NVIndex{&card.PIN, card.PUK} {
		if x == nil || x.Handle == 0 {
			continue
		}
		switch err := t.checkIndexLocked(x); {
		case errors.Is(err, errCardGone):
			continue
		case err != nil:
			errs = append(errs, err)
			continue
		}
		errs = append(errs, t.undefineIndexLocked(tpm2.TPMHandle(x.Handle)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("delete virtual smart card: %w", err)
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// PruneOrphans deletes the NV indices in hwauthd's range that belong to
// none of keep (the cards the daemon has stored): the leftovers of a
// CreateCard whose card was never saved (a crash between the two) or of a
// store lost or restored from an old backup, and the per-card storage keys
// of format 1. It returns how many objects it deleted. Cards of other
// devices in keep are ignored.
func (t *TPM) PruneOrphans(ctx context.Context, keep []*Card) (int, error) {
	if err := t.lock(ctx); err != nil {
		return 0, err
	}
	defer t.unlock()
	kept := map[tpm2.TPMHandle]string{}
	for _, c := range keep {
		if c.DeviceID != t.deviceID {
			continue
		}
		kept[tpm2.TPMHandle(c.PIN.Handle)] = string(c.PIN.Name)
		if c.PUK != nil {
			kept[tpm2.TPMHandle(c.PUK.Handle)] = string(c.PUK.Name)
		}
	}
	idx, err := t.nvHandlesLocked()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range idx {
		rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.tr)
		if err != nil {
			return n, fmt.Errorf("read NV index: %w", classify(err))
		}
		if name, ok := kept[h]; ok && name == string(rsp.NVName.Buffer) {
			continue
		}
		if err := t.undefineIndexLocked(h); err != nil {
			return n, err
		}
		n++
	}
	legacy, err := t.handlesLocked(legacyRootHandle, legacyRootHandles)
	if err != nil {
		return n, err
	}
	for _, h := range legacy {
		rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(t.tr)
		if err != nil {
			return n, fmt.Errorf("read persistent key: %w", classify(err))
		}
		if err := t.evictLocked(tpm2.NamedHandle{Handle: h, Name: rsp.Name}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
