package tpm

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
)

// An admin key is the alternative unblock route of Windows virtual smart
// cards: IT holds a key, the card answers a challenge, and only a response
// made with that key unblocks the PIN. Here the admin key is an ECDSA P-256
// key pair whose private half stays with IT; the card's PIN index has two
// policy branches, TPM2_PolicySigned by that key with TPM2_NV_ChangeAuth
// (a new PIN) and with TPM2_NV_Write (the count reset). The challenges are
// the nonceTPM of two policy sessions the TPM keeps for the card, and the
// TPM checks the signatures: hwauthd never holds anything that unblocks.
// IT signs the challenges (device.AdminChallenge) with package adminkey.

// adminChallengeLifetime is how long a card's admin challenge stays
// answerable.
const adminChallengeLifetime = 5 * time.Minute

// pendingAdmin is a card's open admin challenge: two policy sessions
// saved in the TPM (TPM2_ContextSave), off the loaded-session slots.
type pendingAdmin struct {
	contexts [2]tpm2.TPMSContext
	nonces   [2][]byte
	expires  time.Time
}

// adminKeyPublic is the TPMT_PUBLIC of an admin key, as TPM2_LoadExternal
// takes it and as its name enters the PIN index's policy.
func adminKeyPublic(key *ecdsa.PublicKey) (tpm2.TPMTPublic, []byte, error) {
	if key.Curve != elliptic.P256() {
		return tpm2.TPMTPublic{}, nil, fmt.Errorf("admin key: want ECDSA P-256: %w", hwerr.ErrNotSupported)
	}
	pt, err := key.ECDH()
	if err != nil {
		return tpm2.TPMTPublic{}, nil, fmt.Errorf("admin key: %w: %v", hwerr.ErrInvalidInput, err)
	}
	raw := pt.Bytes() // 04 || X || Y
	pub := tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{SignEncrypt: true, UserWithAuth: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256})},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: raw[1:33]},
			Y: tpm2.TPM2BECCParameter{Buffer: raw[33:65]},
		}),
	}
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		return tpm2.TPMTPublic{}, nil, err
	}
	return pub, name.Buffer, nil
}

// adminBranches are the PIN index's admin branches: PolicySigned by the
// admin key with TPM2_NV_ChangeAuth, then with TPM2_NV_Write; unreachable
// random digests for a card without admin key.
func adminBranches(adminName []byte) ([][]byte, error) {
	if adminName == nil {
		return [][]byte{randomBytes(32), randomBytes(32)}, nil
	}
	signed := tpm2.PolicySigned{AuthObject: tpm2.NamedHandle{Name: tpm2.TPM2BName{Buffer: adminName}}}
	change, err := policyDigest(signed, ccAssertion(tpm2.TPMCCNVChangeAuth))
	if err != nil {
		return nil, err
	}
	reset, err := policyDigest(signed, ccAssertion(tpm2.TPMCCNVWrite))
	if err != nil {
		return nil, err
	}
	return [][]byte{change, reset}, nil
}

// AdminChallenge opens an admin unblock of card: two policy sessions,
// saved in the TPM, whose nonces the admin key holder signs. A card
// without admin key is hwerr.ErrNotSupported. A new challenge replaces the
// card's previous one.
func (t *TPM) AdminChallenge(ctx context.Context, card *Card) (device.AdminChallenge, error) {
	if len(card.AdminKeyPublic) == 0 {
		return device.AdminChallenge{}, fmt.Errorf("this virtual smart card has no admin key: %w", hwerr.ErrNotSupported)
	}
	if err := t.lock(ctx); err != nil {
		return device.AdminChallenge{}, err
	}
	defer t.unlock()
	if err := t.checkCardLocked(card); err != nil {
		return device.AdminChallenge{}, err
	}
	t.dropAdminLocked(card.ID)
	var p pendingAdmin
	for i := range p.contexts {
		h, nonce, err := t.startPolicySessionLocked()
		if err != nil {
			t.flushPendingLocked(p, i)
			return device.AdminChallenge{}, fmt.Errorf("start admin challenge: %w", err)
		}
		saved, err := tpm2.ContextSave{SaveHandle: h}.Execute(t.tr)
		if err != nil {
			t.flushLocked(h)
			t.flushPendingLocked(p, i)
			return device.AdminChallenge{}, fmt.Errorf("save admin challenge: %w", classify(err))
		}
		p.contexts[i], p.nonces[i] = saved.Context, nonce
	}
	p.expires = time.Now().Add(adminChallengeLifetime)
	t.admin[card.ID] = p
	return device.AdminChallenge{Challenges: p.nonces, Expires: p.expires}, nil
}

// AdminUnblock unblocks card with the admin key holder's responses to its
// open challenge: a new PIN and a reset counter, each authorized by
// TPM2_PolicySigned, which the TPM checks against the card's admin key.
// The challenge is used up, right or wrong. Responses that do not verify
// are hwerr.ErrInvalidInput; no challenge, or an expired one,
// hwerr.ErrNotFound. It zeroes newPIN.
func (t *TPM) AdminUnblock(ctx context.Context, card *Card, responses [2][]byte, newPIN []byte) error {
	return t.newPIN(ctx, card, newPIN, func() error {
		p, ok := t.admin[card.ID]
		delete(t.admin, card.ID)
		if !ok || time.Now().After(p.expires) {
			if ok {
				t.flushPendingLocked(p, 2)
			}
			return fmt.Errorf("no open admin challenge for this card (ask for one, then answer within %v): %w",
				adminChallengeLifetime, hwerr.ErrNotFound)
		}
		// Session handles stay the same saved and loaded: this flushes
		// both sessions whatever happens below.
		defer t.flushPendingLocked(p, 2)
		return t.adminUnblockLocked(card, p, responses, newPIN)
	})
}

func (t *TPM) adminUnblockLocked(card *Card, p pendingAdmin, responses [2][]byte, newPIN []byte) error {
	t.dropSessionsLocked() // two challenge sessions and the encryption session need the slots
	t.dropKeysLocked()     // the admin key and the storage key (the encryption session's salt) need two object slots
	pub, err := tpm2.Unmarshal[tpm2.TPMTPublic](card.AdminKeyPublic)
	if err != nil {
		return fmt.Errorf("card admin key: %w: %v", hwerr.ErrInvalidInput, err)
	}
	admin, err := tpm2.LoadExternal{InPublic: tpm2.New2B(*pub), Hierarchy: tpm2.TPMRHNull}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("load admin key: %w", classify(err))
	}
	defer t.flushLocked(admin.ObjectHandle)
	var sessions [2]tpm2.TPMHandle
	for i := range sessions {
		rsp, err := tpm2.ContextLoad{Context: p.contexts[i]}.Execute(t.tr)
		if err != nil {
			return fmt.Errorf("admin challenge is gone (the TPM restarted?): %w: %v", hwerr.ErrNotFound, err)
		}
		sessions[i] = tpm2.TPMHandle(rsp.LoadedHandle)
	}
	for i, cc := range []tpm2.TPMCC{tpm2.TPMCCNVChangeAuth, tpm2.TPMCCNVWrite} {
		sig, err := ecdsaSignature(responses[i])
		if err != nil {
			return err
		}
		_, err = tpm2.PolicySigned{
			AuthObject:    tpm2.NamedHandle{Handle: admin.ObjectHandle, Name: admin.Name},
			PolicySession: sessions[i],
			NonceTPM:      tpm2.TPM2BNonce{Buffer: p.nonces[i]},
			Auth:          sig,
		}.Execute(t.tr)
		if err != nil {
			return fmt.Errorf("the response does not verify with the card's admin key: %w", hwerr.ErrInvalidInput)
		}
		if _, err := (tpm2.PolicyCommandCode{PolicySession: sessions[i], Code: cc}).Execute(t.tr); err != nil {
			return fmt.Errorf("admin unblock: %w", classify(err))
		}
		if _, err := (tpm2.PolicyOr{PolicySession: sessions[i], PHashList: orList(card.PIN.Branches)}).Execute(t.tr); err != nil {
			return fmt.Errorf("admin unblock: %w", classify(err))
		}
	}
	auth := card.authValue(pinSecret, newPIN)
	defer clear(auth)
	if err := nvChangeAuth(t.tr, card.PIN.named(), auth, &heldPolicy{h: sessions[0], nonceTPM: p.nonces[0]}, t.encryptSession()); err != nil {
		return fmt.Errorf("set new PIN: %w", classify(err))
	}
	_, err = tpm2.NVWrite{
		AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(card.PIN.Handle), Name: card.PIN.named().Name,
			Auth: &heldPolicy{h: sessions[1], nonceTPM: p.nonces[1]}},
		NVIndex: card.PIN.named(),
		Data:    tpm2.TPM2BMaxNVBuffer{Buffer: counter{0, uint32(card.PINTries)}.bytes()},
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("reset PIN counter: %w", classify(err))
	}
	return nil
}

// ecdsaSignature turns an ASN.1 DER ECDSA P-256 signature into a
// TPMT_SIGNATURE with SHA-256.
func ecdsaSignature(der []byte) (tpm2.TPMTSignature, error) {
	var rs struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &rs); err != nil || len(rest) != 0 || rs.R == nil || rs.S == nil ||
		rs.R.Sign() <= 0 || rs.S.Sign() <= 0 || rs.R.BitLen() > 256 || rs.S.BitLen() > 256 {
		return tpm2.TPMTSignature{}, fmt.Errorf("the response is not an ECDSA P-256 signature: %w", hwerr.ErrInvalidInput)
	}
	return tpm2.TPMTSignature{
		SigAlg: tpm2.TPMAlgECDSA,
		Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
			Hash:       tpm2.TPMAlgSHA256,
			SignatureR: tpm2.TPM2BECCParameter{Buffer: rs.R.FillBytes(make([]byte, 32))},
			SignatureS: tpm2.TPM2BECCParameter{Buffer: rs.S.FillBytes(make([]byte, 32))},
		}),
	}, nil
}

// dropAdminLocked forgets (and flushes) the card's open challenge.
func (t *TPM) dropAdminLocked(cardID string) {
	if p, ok := t.admin[cardID]; ok {
		delete(t.admin, cardID)
		t.flushPendingLocked(p, 2)
	}
}

// flushPendingLocked flushes the first n saved sessions of p.
func (t *TPM) flushPendingLocked(p pendingAdmin, n int) {
	for i := range n {
		if p.contexts[i].SavedHandle != 0 {
			t.flushLocked(p.contexts[i].SavedHandle)
		}
	}
}

// heldPolicy is a policy session the engine started and loaded itself
// (an admin challenge's), for use as an authorization: no salt, no bind,
// no PolicyAuthValue, so its HMAC is empty (TPM 2.0 Part 1 §19.6.8).
type heldPolicy struct {
	h           tpm2.TPMHandle
	nonceCaller []byte
	nonceTPM    []byte
}

func (s *heldPolicy) Init(_ transport.TPM) error { return nil }

func (s *heldPolicy) CleanupFailure(_ transport.TPM) error { return nil }

func (s *heldPolicy) NonceTPM() tpm2.TPM2BNonce { return tpm2.TPM2BNonce{Buffer: s.nonceTPM} }

func (s *heldPolicy) NewNonceCaller() error {
	s.nonceCaller = randomBytes(16)
	return nil
}

func (s *heldPolicy) Authorize(tpm2.TPMCC, []byte, []byte, []tpm2.TPM2BName, int) (*tpm2.TPMSAuthCommand, error) {
	return &tpm2.TPMSAuthCommand{Handle: s.h, Nonce: tpm2.TPM2BNonce{Buffer: s.nonceCaller}}, nil
}

func (s *heldPolicy) Validate(_ tpm2.TPMRC, _ tpm2.TPMCC, _ []byte, _ []tpm2.TPM2BName, _ int, auth *tpm2.TPMSAuthResponse) error {
	s.nonceTPM = auth.Nonce.Buffer
	return nil
}

func (s *heldPolicy) IsEncryption() bool     { return false }
func (s *heldPolicy) IsDecryption() bool     { return false }
func (s *heldPolicy) Encrypt([]byte) error   { return nil }
func (s *heldPolicy) Decrypt([]byte) error   { return nil }
func (s *heldPolicy) Handle() tpm2.TPMHandle { return s.h }
