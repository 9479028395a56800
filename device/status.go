package device

// Status is a backend's state, which the daemon shows in /v1/status.
type Status struct {
	State State
	// Detail says why a backend is down, in words for people.
	Detail string
	// Readers is the number of PC/SC readers (pcsc only); nil when not
	// counted.
	Readers *int
	// Manufacturer is the TPM manufacturer (tpm only).
	Manufacturer string
	// Devices is the number of devices seen: FIDO2 keys, PKCS#11 tokens, or
	// for tpm the virtual smart cards in the TPM; nil when not counted.
	Devices *int
	// TPM is the TPM's lockout state and room for cards (tpm only, when it
	// answers).
	TPM *TPMStatus
}

// State is whether a backend works.
type State string

// The states of a backend.
const (
	// StateUp: the backend works.
	StateUp State = "up"
	// StateDown: the backend is configured but failing (or starting).
	StateDown State = "down"
	// StateAbsent: what the backend needs is not on this machine (no TPM,
	// no PKCS#11 module installed).
	StateAbsent State = "absent"
	// StateDisabled: the configuration turns the backend off.
	StateDisabled State = "disabled"
)

// TPMStatus is what IT needs to know of the TPM behind virtual smart cards.
type TPMStatus struct {
	// Lockout is the TPM's dictionary-attack state. Virtual card PINs do
	// not count towards it (each card counts its own tries in the TPM).
	Lockout TPMLockout
	// Cards is how many virtual cards this device holds; MaxCards the most
	// it may (config max_cards, never more than Cards+CardsLeft).
	Cards, MaxCards int
	// CardsLeft estimates how many more cards the TPM has room for.
	CardsLeft int
	// PersistentAvail is the TPM's own TPM_PT_HR_PERSISTENT_AVAIL.
	PersistentAvail int
}

// TPMLockout is the TPM's dictionary-attack state (TPM_PT_MAX_AUTH_FAIL,
// TPM_PT_LOCKOUT_COUNTER, TPM_PT_LOCKOUT_INTERVAL, TPM_PT_LOCKOUT_RECOVERY,
// TPMA_PERMANENT inLockout).
type TPMLockout struct {
	MaxTries, Failures               uint32
	IntervalSeconds, RecoverySeconds uint32
	InLockout                        bool
}

// Reader is a PC/SC reader and its card's presence.
type Reader struct {
	Name        string
	CardPresent bool
	// ATR is the card's answer-to-reset, when a card is present.
	ATR []byte
}

// Event is something a backend tells that changes no state the daemon
// keeps (Host.Notify); the daemon passes it on to its watchers.
type Event struct {
	Type          EventType
	Reader        string
	Authenticator string
	User          string
	// Reason says what happened, in words for people.
	Reason string
	// Registration is the registration an EventRegistrationRemoved is
	// about, and Default the user's default registration after it.
	Registration, Default string
}

// EventType is what an Event tells.
type EventType string

// The events backends publish.
const (
	// EventCardInserted: a card was inserted that cannot be used (Reason
	// says why); usable cards are announced by Host.Attach.
	EventCardInserted EventType = "card-inserted"
	// EventCardRemoved: such a card was removed again.
	EventCardRemoved EventType = "card-removed"
	// EventTouchRequired: a security key waits for a touch.
	EventTouchRequired EventType = "touch-required"
	// EventPINAttempt: a PIN was tried on an authenticator by another
	// application (a virtual card presented through PC/SC).
	EventPINAttempt EventType = "pin-attempt"
	// EventRegistrationRemoved: a registration went with its
	// authenticator (a deleted virtual card).
	EventRegistrationRemoved EventType = "registration-removed"
)
