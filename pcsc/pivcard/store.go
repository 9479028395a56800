package pivcard

import (
	"crypto"

	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// Store is what the PIV applet keeps behind its commands: the keys, the PIN
// and PUK with their counters, and the data objects. The applet itself (Card)
// holds only the volatile security status and the APDU plumbing, so one
// applet serves software keys (the emulated test card, New and Load) and
// keys held elsewhere, such as a TPM virtual smart card whose PIN counter is
// the TPM's.
//
// The applet calls a Store with its own lock held, one call at a time.
// Secrets arrive as the card receives them: 8 bytes padded with FF (SP
// 800-73-4 Part 2 §2.4.3), to be cleared by the applet after the call.
type Store interface {
	// Label is the application label of SELECT's answer.
	Label() string
	// Object returns the content of a data object (what its 53 field
	// holds), or nil when the store has none with the tag. The Discovery
	// object is the applet's.
	Object(tag uint32) []byte
	// Key returns the algorithm of the key in the slot, if there is one.
	Key(slot piv.Slot) (piv.KeyAlg, bool)
	// Sign runs the private-key operation of the slot's key on a challenge
	// of the algorithm's size (for RSA the padded block, for ECDSA the
	// digest fitted to the curve). pin is the padded PIN verified in this
	// card session, nil for a key that needs none; stores that check the PIN
	// themselves ignore it.
	Sign(slot piv.Slot, challenge, pin []byte) ([]byte, error)

	// VerifyPIN checks a padded PIN, counting a failed try, and answers 9000,
	// 63Cx (x tries left), 6983 (blocked) or another status word.
	VerifyPIN(pin []byte) uint16
	// PINTriesLeft is the PIN's retry counter (0 = blocked).
	PINTriesLeft() int
	// ChangeReference replaces the PIN (ref 80) or PUK (ref 81) after
	// checking the old value, as VerifyPIN does.
	ChangeReference(ref byte, oldValue, newValue []byte) uint16
	// ResetRetryCounter sets a new PIN with the PUK and restores the PIN's
	// tries, counting a wrong PUK.
	ResetRetryCounter(puk, newPIN []byte) uint16
}

// Provisioner is implemented by stores that may be provisioned through the
// card, with the management key (SP 800-73-4 Part 2 §3.3): the emulated test
// card is; a virtual card, provisioned by IT through hwauthd's API, is not,
// and the applet refuses GENERATE, PUT DATA and every management-key command
// for it.
type Provisioner interface {
	// MgmKey returns the management key and its algorithm (03, 08, 0A, 0C).
	MgmKey() (alg byte, key []byte)
	// SetMgmKey replaces it; the applet has checked alg and key length.
	SetMgmKey(alg byte, key []byte) uint16
	// Generate replaces the slot's key by a new one of the algorithm.
	Generate(slot piv.Slot, alg piv.KeyAlg) (crypto.PublicKey, uint16)
	// PutObject stores a data object's content; empty deletes it.
	PutObject(tag uint32, content []byte) uint16
}
