package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Card is a TPM virtual smart card as the daemon stores it. It is plain
// data (JSON-friendly; []byte fields encode as base64): the engine never
// writes files, the daemon persists the Card it is given and gives it back.
// Nothing in it is secret in clear: the blobs are wrapped by this TPM and
// opened only with the PIN or PUK, and only while the card's storage key
// (RootHandle) exists.
type Card struct {
	// ID is random, 16 bytes in hex.
	ID    string `json:"id"`
	Label string `json:"label"`
	// Algorithm is AlgECCP256, AlgECCP384 or AlgRSA2048.
	Algorithm string `json:"algorithm"`
	// DeviceID is the (*TPM).DeviceID of the TPM holding the card.
	DeviceID  string    `json:"device_id"`
	CreatedAt time.Time `json:"created_at"`

	// RootHandle is the persistent handle of the card's own storage key
	// and RootName its TPM name, checked before every use.
	RootHandle uint32 `json:"root_handle"`
	RootName   []byte `json:"root_name"`
	// KeyPublic and KeyPrivate are the signing key's TPM2B_PUBLIC and
	// TPM2B_PRIVATE contents (TPMT_PUBLIC; the wrapped private area).
	KeyPublic  []byte `json:"key_public"`
	KeyPrivate []byte `json:"key_private"`
	// PINSealed and PUKSealed hold the key's authValue sealed under the
	// PIN and under the PUK.
	PINSealed Sealed `json:"pin_sealed"`
	PUKSealed Sealed `json:"puk_sealed"`
	// Salt is mixed into the PIN and PUK before they become authValues.
	Salt []byte `json:"salt"`

	// PublicKey is the signing key's public key, PKIX DER.
	PublicKey []byte `json:"public_key"`
	// Certificate is the imported certificate, DER; empty until imported.
	Certificate []byte `json:"certificate,omitempty"`

	// PINTries and PUKTries are the counters' starting values;
	// PINTriesLeft and PUKTriesLeft what remains (0 = blocked).
	PINTries     int `json:"pin_tries"`
	PINTriesLeft int `json:"pin_tries_left"`
	PUKTries     int `json:"puk_tries"`
	PUKTriesLeft int `json:"puk_tries_left"`
}

// Sealed is a TPM sealed data object: TPM2B_PUBLIC and TPM2B_PRIVATE
// contents.
type Sealed struct {
	Public  []byte `json:"public"`
	Private []byte `json:"private"`
}

// CreateOptions describe a new virtual card.
type CreateOptions struct {
	Label string
	// PIN and PUK must meet the Policy. CreateCard zeroes them.
	PIN, PUK []byte
	// Algorithm is AlgECCP256 (when empty), AlgECCP384 or AlgRSA2048.
	Algorithm string
	// Attest asks for a TPM2_Certify statement over the new key.
	Attest bool
	// Nonce is the verifier's qualifying data for the attestation, at
	// most 64 bytes.
	Nonce []byte
}

// maxNonce is the size of TPM2B_DATA's buffer: sizeof(TPMT_HA) with SHA-512.
const maxNonce = 64

// CreateCard creates a virtual card: its own storage key (persistent, under
// the SRK), a signing key of opts.Algorithm under it whose authValue is a
// random secret K (192 bits as 32 base64 characters), and K sealed once under the PIN and once under
// the PUK. With opts.Attest it also returns a TPM2_Certify statement. The
// daemon checks the per-device limit with CanCreate first. It zeroes
// opts.PIN and opts.PUK.
func (t *TPM) CreateCard(ctx context.Context, opts CreateOptions) (*Card, *Attestation, error) {
	defer clear(opts.PIN)
	defer clear(opts.PUK)
	if err := t.checkCreateOptions(&opts); err != nil {
		return nil, nil, err
	}
	if err := t.lock(ctx); err != nil {
		return nil, nil, err
	}
	defer t.unlock()
	r, err := t.createRootLocked()
	if err != nil {
		return nil, nil, err
	}
	c, att, err := t.createCardLocked(r, opts)
	if err != nil {
		t.tr.ctx = nil // clean up even when ctx has ended
		_ = t.evictRootLocked(r)
		return nil, nil, err
	}
	return c, att, nil
}

func (t *TPM) checkCreateOptions(opts *CreateOptions) error {
	if opts.Algorithm == "" {
		opts.Algorithm = AlgECCP256
	}
	if _, err := signingKeyTemplate(opts.Algorithm); err != nil {
		return err
	}
	if len(opts.Nonce) > maxNonce {
		return fmt.Errorf("attestation nonce longer than %d bytes: %w", maxNonce, hwerr.ErrInvalidInput)
	}
	if err := t.policy.CheckPIN("PIN", opts.PIN); err != nil {
		return err
	}
	return t.policy.CheckPIN("PUK", opts.PUK)
}

func (t *TPM) createCardLocked(r root, opts CreateOptions) (*Card, *Attestation, error) {
	c := &Card{
		ID:           randomHex(16),
		Label:        opts.Label,
		Algorithm:    opts.Algorithm,
		DeviceID:     t.deviceID,
		CreatedAt:    time.Now().UTC(),
		RootHandle:   uint32(r.handle.Handle),
		RootName:     r.handle.Name.Buffer,
		Salt:         randomBytes(16),
		PINTries:     t.policy.PINTries,
		PINTriesLeft: t.policy.PINTries,
		PUKTries:     t.policy.PUKTries,
		PUKTriesLeft: t.policy.PUKTries,
	}
	k := newKeyAuth()
	defer clear(k)
	if err := t.createKeyLocked(r, c, k); err != nil {
		return nil, nil, err
	}
	var err error
	if c.PINSealed, err = t.sealLocked(r, c.authValue(pinSecret, opts.PIN), k); err != nil {
		return nil, nil, err
	}
	if c.PUKSealed, err = t.sealLocked(r, c.authValue(pukSecret, opts.PUK), k); err != nil {
		return nil, nil, err
	}
	if !opts.Attest {
		return c, nil, nil
	}
	att, err := t.attestLocked(r, c, k, opts.Nonce)
	if err != nil {
		return nil, nil, err
	}
	return c, att, nil
}

// createKeyLocked creates the card's signing key with authValue k under r
// (TPM 2.0 Part 3 §12.1 TPM2_Create; inSensitive travels encrypted) and
// records its blobs and public key in c.
func (t *TPM) createKeyLocked(r root, c *Card, k []byte) error {
	tmpl, err := signingKeyTemplate(c.Algorithm)
	if err != nil {
		return err
	}
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: r.handle.Handle, Name: r.handle.Name, Auth: secretSession(r, nil, encryptIn)},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: k},
		}},
		InPublic: tpm2.New2B(tmpl),
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

// sealLocked seals data under r in a sealed data object with authValue
// auth (TPM 2.0 Part 3 §12.1 TPM2_Create with a KEYEDHASH template; the
// sensitive area travels encrypted). It zeroes auth.
func (t *TPM) sealLocked(r root, auth, data []byte) (Sealed, error) {
	defer clear(auth)
	rsp, err := tpm2.Create{
		ParentHandle: tpm2.AuthHandle{Handle: r.handle.Handle, Name: r.handle.Name, Auth: secretSession(r, nil, encryptIn)},
		InSensitive: tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{
			UserAuth: tpm2.TPM2BAuth{Buffer: auth},
			Data:     tpm2.NewTPMUSensitiveCreate(&tpm2.TPM2BSensitiveData{Buffer: data}),
		}},
		InPublic: tpm2.New2B(sealedTemplate()),
	}.Execute(t.tr)
	if err != nil {
		return Sealed{}, fmt.Errorf("seal card secret: %w", classify(err))
	}
	return Sealed{Public: rsp.OutPublic.Bytes(), Private: rsp.OutPrivate.Buffer}, nil
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

// CheckCard tells whether card can be used on this TPM: hwerr.ErrWrongDevice
// when it was created on another device (its DeviceID differs, or its key
// blob fails TPM2_Load's integrity check under the card's storage key), and
// hwerr.ErrRemoved when it was deleted (its storage key is gone).
func (t *TPM) CheckCard(ctx context.Context, card *Card) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	r, err := t.readRootLocked(card)
	if err != nil {
		return err
	}
	for _, blob := range [][2][]byte{
		{card.KeyPublic, card.KeyPrivate},
		{card.PINSealed.Public, card.PINSealed.Private},
		{card.PUKSealed.Public, card.PUKSealed.Private},
	} {
		h, err := t.loadLocked(r, blob[0], blob[1])
		if err != nil {
			return err
		}
		t.flushLocked(h.Handle)
	}
	return nil
}

// DestroyCard deletes card from the TPM for good: it evicts the card's
// persistent storage key, under which the signing key and both sealed
// secrets are wrapped, so no copy of the card's blobs can be loaded again,
// with or without the PIN (TPM 2.0 Part 3 §28.5 TPM2_EvictControl). A card
// already destroyed is not an error. The daemon deletes its record after
// this returns nil.
func (t *TPM) DestroyCard(ctx context.Context, card *Card) error {
	if err := t.lock(ctx); err != nil {
		return err
	}
	defer t.unlock()
	r, err := t.readRootLocked(card)
	switch {
	case err == errRootGone:
		return nil
	case err != nil:
		return fmt.Errorf("delete virtual smart card: %w", err)
	}
	return t.evictRootLocked(r)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func randomHex(n int) string { return hex.EncodeToString(randomBytes(n)) }

// PruneOrphans destroys the card storage keys in hwauthd's persistent handle
// range that belong to none of keep (the cards the daemon has stored): the
// leftovers of a CreateCard whose card was never saved (a crash between the
// two) or of a store lost or restored from an old backup. It returns how many
// it destroyed. Cards of other devices in keep are ignored.
func (t *TPM) PruneOrphans(ctx context.Context, keep []*Card) (int, error) {
	if err := t.lock(ctx); err != nil {
		return 0, err
	}
	defer t.unlock()
	kept := map[tpm2.TPMHandle]string{}
	for _, c := range keep {
		if c.DeviceID == t.deviceID {
			kept[tpm2.TPMHandle(c.RootHandle)] = string(c.RootName)
		}
	}
	roots, err := t.rootHandlesLocked()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, h := range roots {
		rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(t.tr)
		if err != nil {
			return n, fmt.Errorf("read card root key: %w", classify(err))
		}
		if name, ok := kept[h]; ok && name == string(rsp.Name.Buffer) {
			continue
		}
		if err := t.evictRootLocked(root{handle: tpm2.NamedHandle{Handle: h, Name: rsp.Name}}); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}
