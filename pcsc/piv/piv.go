// Package piv is a client of the PIV card application (NIST SP 800-73-4
// Part 2) over an apdu.Transmitter: selecting the application, reading the
// CHUID, Discovery object and certificates, PIN verification, change and
// unblock, and the card's keys as crypto.Signer (Key), which signs with the
// hash of crypto.SignerOpts. It keeps nothing the card says: its caller
// decides when to read a certificate again.
//
// The constants (AID, instructions, object tags, slots, algorithm
// identifiers) are shared with the emulated card in package pivcard.
package piv

import (
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/hwerr"
)

// AID is the full application identifier of the PIV card application
// (SP 800-73-4 Part 1 §2.2): RID A0 00 00 03 08, PIX 00 00 10 00 01 00.
var AID = []byte{0xA0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

// RIDLength is the length of the registered application provider identifier
// at the start of AID; SELECT accepts the AID truncated to it (SP 800-73-4
// Part 2 §3.1.1, "partial AID").
const RIDLength = 5

// Instruction bytes of the PIV card commands (SP 800-73-4 Part 2 §3).
const (
	InsSelect              = 0xA4 // §3.1.1 SELECT
	InsGetData             = 0xCB // §3.1.2 GET DATA
	InsVerify              = 0x20 // §3.2.1 VERIFY
	InsChangeReferenceData = 0x24 // §3.2.2 CHANGE REFERENCE DATA
	InsResetRetryCounter   = 0x2C // §3.2.3 RESET RETRY COUNTER
	InsGeneralAuthenticate = 0x87 // §3.2.4 GENERAL AUTHENTICATE
	InsGetResponse         = 0xC0 // ISO/IEC 7816-4 §7.6.1 GET RESPONSE
)

// Key references of the PIN and PUK (SP 800-73-4 Part 1 Table 4).
const (
	KeyRefPIN = 0x80 // PIV Card Application PIN
	KeyRefPUK = 0x81 // PIN Unblocking Key
)

// Data object tags (SP 800-73-4 Part 1 Table 3) and the tags used inside
// them.
const (
	TagDiscovery   = 0x7E     // Discovery Object, read with GET DATA 5C 01 7E
	TagCHUID       = 0x5FC102 // Card Holder Unique Identifier
	TagCCC         = 0x5FC107 // Card Capability Container
	TagData        = 0x53     // the data field wrapping a container's content
	TagTagList     = 0x5C     // the tag list of GET DATA's command data
	TagCertificate = 0x70     // certificate in a certificate container
	TagCertInfo    = 0x71     // CertInfo: 01 means the certificate is gzipped
	TagErrorDetect = 0xFE     // error detection code (empty)
	TagDynAuth     = 0x7C     // dynamic authentication template (§3.2.4)
	TagWitness     = 0x80     // GENERAL AUTHENTICATE witness
	TagChallenge   = 0x81     // GENERAL AUTHENTICATE challenge
	TagResponse    = 0x82     // GENERAL AUTHENTICATE response
	TagAppProperty = 0x61     // application property template (§3.1.1)
)

// Slot is a PIV key reference (SP 800-73-4 Part 1 Table 4b).
type Slot byte

// The four slots this project uses.
const (
	SlotAuthentication     Slot = 0x9A // PIV Authentication
	SlotSignature          Slot = 0x9C // Digital Signature (PIN always)
	SlotKeyManagement      Slot = 0x9D // Key Management
	SlotCardAuthentication Slot = 0x9E // Card Authentication (no PIN)
)

// Slots lists the supported slots in key reference order.
var Slots = []Slot{SlotAuthentication, SlotSignature, SlotKeyManagement, SlotCardAuthentication}

// ObjectTag returns the tag of the certificate container of the slot
// (SP 800-73-4 Part 1 Table 3), or 0 for an unknown slot.
func (s Slot) ObjectTag() uint32 {
	switch s {
	case SlotAuthentication:
		return 0x5FC105
	case SlotSignature:
		return 0x5FC10A
	case SlotKeyManagement:
		return 0x5FC10B
	case SlotCardAuthentication:
		return 0x5FC101
	}
	return 0
}

// PINAlways reports whether every use of the slot's key needs a fresh PIN
// verification (the Digital Signature key, SP 800-73-4 Part 1 §3.3.2).
func (s Slot) PINAlways() bool { return s == SlotSignature }

// NeedsPIN reports whether the slot's key needs a verified PIN; the Card
// Authentication key does not (SP 800-73-4 Part 1 §3.3.4).
func (s Slot) NeedsPIN() bool { return s != SlotCardAuthentication }

// String returns the slot as the API names it, in lower-case hex ("9a").
func (s Slot) String() string { return fmt.Sprintf("%02x", byte(s)) }

// ParseSlot parses a slot name such as "9a" or "9A".
func ParseSlot(s string) (Slot, error) {
	for _, slot := range Slots {
		if strings.EqualFold(s, slot.String()) {
			return slot, nil
		}
	}
	return 0, fmt.Errorf("PIV slot %q: %w", s, hwerr.ErrNotFound)
}

// KeyAlg is a PIV cryptographic algorithm identifier (SP 800-78-4 Table 6-2),
// the P1 of GENERAL AUTHENTICATE.
type KeyAlg byte

// The key algorithms this project supports.
const (
	KeyAlgRSA2048 KeyAlg = 0x07
	KeyAlgP256    KeyAlg = 0x11
	KeyAlgP384    KeyAlg = 0x14
)

// KeyAlgs lists the supported key algorithms.
var KeyAlgs = []KeyAlg{KeyAlgP256, KeyAlgP384, KeyAlgRSA2048}

// String returns the short name used in flags and state files: "p256",
// "p384" or "rsa2048".
func (a KeyAlg) String() string {
	switch a {
	case KeyAlgRSA2048:
		return "rsa2048"
	case KeyAlgP256:
		return "p256"
	case KeyAlgP384:
		return "p384"
	}
	return fmt.Sprintf("alg%02x", byte(a))
}

// ParseKeyAlg parses "p256", "p384" or "rsa2048".
func ParseKeyAlg(s string) (KeyAlg, error) {
	for _, a := range KeyAlgs {
		if strings.EqualFold(s, a.String()) {
			return a, nil
		}
	}
	return 0, fmt.Errorf("PIV key algorithm %q: %w", s, hwerr.ErrNotSupported)
}

// ChallengeSize returns the size of GENERAL AUTHENTICATE's challenge for the
// algorithm: the curve's byte size for ECDSA, the modulus size for RSA
// (SP 800-73-4 Part 2 §3.2.4, Appendix A.4).
func (a KeyAlg) ChallengeSize() int {
	switch a {
	case KeyAlgRSA2048:
		return 256
	case KeyAlgP256:
		return 32
	case KeyAlgP384:
		return 48
	}
	return 0
}
