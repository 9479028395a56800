package ipc

import (
	"encoding/json"
	"time"
)

// Event types of GET /v1/events (SPEC.md "The socket API").
const (
	EventReaderAdded   = "reader-added"
	EventReaderRemoved = "reader-removed"
	EventCardInserted  = "card-inserted"
	EventCardRemoved   = "card-removed"
	EventKeyAttached   = "key-attached"
	EventKeyDetached   = "key-detached"
	EventPINBlocked    = "pin-blocked"
	// EventAuthenticatorMismatch reports a card that is not the one it
	// claims to be: it failed its card-authentication challenge, or its keys
	// are not those of the registration with its id. It gets no PIN.
	EventAuthenticatorMismatch = "authenticator-mismatch"
	EventSessionStarted        = "session-started"
	EventSessionEnded          = "session-ended"
	// EventSessionLocked: under removal policy "lock", logind locked the
	// login session of Session (Data: {"login_session": id}).
	EventSessionLocked = "session-locked"
	// EventRemovalFailed: the removal policy could not lock or end the
	// login session of Session; Reason is logind's answer (Data: {"action":
	// "lock" or "logout", "login_session": id}).
	EventRemovalFailed       = "removal-failed"
	EventRegistrationAdded   = "registration-added"
	EventRegistrationRemoved = "registration-removed"
	// EventTouchRequired tells clients to ask the person to touch the
	// security key named in Authenticator: an operation is waiting for it.
	EventTouchRequired = "touch-required"
	// EventPINAttempt reports a PIN or PUK attempt made on a virtual smart
	// card through its PC/SC reader, by an application other than hwauthd;
	// Reason says its outcome.
	EventPINAttempt = "pin-attempt"
	// EventSnapshotDone marks the end of the initial snapshot of a stream:
	// the events before it describe what is present now, those after it are
	// live.
	EventSnapshotDone = "snapshot-done"
	// EventDropped is the last event of a subscriber that fell behind; it
	// resumes with ?since=<last seq> or starts over.
	EventDropped = "dropped"
)

// Event is one line of the event stream. Seq increases by one per published
// event; snapshot events carry Seq 0 (they describe state, not history), and
// snapshot-done carries the Seq of the last published event, to resume from.
type Event struct {
	Seq           uint64          `json:"seq"`
	Time          time.Time       `json:"time"`
	Type          string          `json:"type"`
	Reader        string          `json:"reader,omitempty"`
	Authenticator string          `json:"authenticator,omitempty"`
	User          string          `json:"user,omitempty"`
	Session       string          `json:"session,omitempty"`
	Reason        string          `json:"reason,omitempty"`
	Data          json.RawMessage `json:"data,omitempty"`
}
