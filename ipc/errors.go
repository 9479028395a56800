package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Code is a stable, machine-readable error code of the API. Codes are listed
// with their HTTP status and advice in docs/api.md; they are never renamed.
type Code string

// The error codes. Each comment says what the person or client should do next.
const (
	// CodeBadRequest: the request is malformed; fix the named field and send it again.
	CodeBadRequest Code = "bad_request"
	// CodeUnauthorized: the caller's account may not do this; ask an administrator, or run as root or a member of the admin group.
	CodeUnauthorized Code = "unauthorized"
	// CodeNotFound: the path or named object does not exist; check the id (list authenticators, registrations or sessions again).
	CodeNotFound Code = "not_found"
	// CodeNoAuthenticator: no usable authenticator is present; insert the card or plug in the security key and try again.
	CodeNoAuthenticator Code = "no_authenticator"
	// CodePINIncorrect: the PIN was wrong; retries_left says how many tries remain, type it again carefully.
	CodePINIncorrect Code = "pin_incorrect"
	// CodePINBlocked: the PIN is blocked after too many wrong tries; unblock it with the PUK (hwauthctl pin unblock) or ask IT.
	CodePINBlocked Code = "pin_blocked"
	// CodePINPolicy: the new PIN does not meet the rules (length, characters); choose another one.
	CodePINPolicy Code = "pin_policy"
	// CodePINRequired: the operation needs the PIN; send it with the request.
	CodePINRequired Code = "pin_required"
	// CodeAuthenticatorRemoved: the card or key was removed during the operation; insert it again and retry.
	CodeAuthenticatorRemoved Code = "authenticator_removed"
	// CodeLimitReached: the user already has the maximum number of authenticators (five by default); ask an administrator to delete one.
	CodeLimitReached Code = "limit_reached"
	// CodeAlreadyRegistered: this authenticator is already registered to the user; nothing to do, or remove it first.
	CodeAlreadyRegistered Code = "already_registered"
	// CodeRegisteredToAnotherUser: the authenticator is registered to another user and policy does not allow shared authenticators; no PIN was sent to it.
	CodeRegisteredToAnotherUser Code = "registered_to_another_user"
	// CodeNotRegistered: the authenticator is not registered to this user; register it first (often done by IT).
	CodeNotRegistered Code = "not_registered"
	// CodeKindNotAllowed: the organisation's policy forbids this kind of authenticator; use another one.
	CodeKindNotAllowed Code = "kind_not_allowed"
	// CodeRegistrationRequired: policy requires a registered authenticator and the user has none; set up your security info first.
	CodeRegistrationRequired Code = "registration_required"
	// CodeCertificateInvalid: the card's certificate is expired, malformed or not issued by a trusted authority; ask IT for a new certificate.
	CodeCertificateInvalid Code = "certificate_invalid"
	// CodeAuthenticatorMismatch: the card claims the id of a registered authenticator but its keys are not the registered ones (a copied card); it was sent no PIN. Use your own card, and tell IT.
	CodeAuthenticatorMismatch Code = "authenticator_mismatch"
	// CodeIdentityMismatch: the card's identity does not map to this user; use your own card or ask IT to link the identity.
	CodeIdentityMismatch Code = "identity_mismatch"
	// CodeBusy: the authenticator is in use by another operation; try again in a moment.
	CodeBusy Code = "busy"
	// CodeBackendUnavailable: the smart card service, TPM or FIDO stack is not available; check that pcscd is running or the device is present, then retry.
	CodeBackendUnavailable Code = "backend_unavailable"
	// CodeNotSupported: the authenticator cannot do this (algorithm, operation); use another key or algorithm.
	CodeNotSupported Code = "not_supported"
	// CodeWrongDevice: the virtual smart card belongs to another computer's TPM; use the card provisioned for this device.
	CodeWrongDevice Code = "wrong_device"
	// CodeLockout: the device refuses authorization for now (a security key needs re-plugging, or the TPM is in dictionary-attack lockout); re-plug, or wait for the TPM's lockout interval.
	CodeLockout Code = "lockout"
	// CodeTPMFull: the TPM has no room for another virtual smart card; IT deletes an unused card on this device.
	CodeTPMFull Code = "tpm_full"
	// CodeTimeout: the authenticator waited too long for you (touch, insertion); try again and act when asked.
	CodeTimeout Code = "timeout"
	// CodeCanceled: the operation was cancelled by the person or the client; start it again if wanted.
	CodeCanceled Code = "canceled"
	// CodeEventsExpired: the events after the given since are no longer kept; subscribe again without since to get a fresh snapshot.
	CodeEventsExpired Code = "events_expired"
	// CodeTooManyAttempts: too many failed sign-ins for this user or caller; wait (retry_after_seconds says how long) and try again.
	CodeTooManyAttempts Code = "too_many_attempts"
	// CodePossibleClone: a security key's signature counter did not increase, so the key may have been cloned; contact your administrator.
	CodePossibleClone Code = "possible_clone"
	// CodeDeviceError: the authenticator answered something the protocol does not allow; remove and re-insert it, and replace it if it persists.
	CodeDeviceError Code = "device_error"
	// CodeMethodNotAllowed: the path does not accept this HTTP method; see docs/api.md.
	CodeMethodNotAllowed Code = "method_not_allowed"
	// CodeTooLarge: the request body is larger than the server accepts; send less.
	CodeTooLarge Code = "too_large"
	// CodeInternal: an unexpected failure inside hwauthd; retry, and report it with the daemon's log if it persists.
	CodeInternal Code = "internal"
)

// codeInfo is one row of the code table.
type codeInfo struct {
	status int
	hint   string
	class  error // the hwerr class that maps to this code, if any
}

// codes is the one table of codes, HTTP statuses, advice and hwerr classes.
var codes = map[Code]codeInfo{
	CodeBadRequest:              {http.StatusBadRequest, "fix the request and send it again", hwerr.ErrInvalidInput},
	CodeUnauthorized:            {http.StatusForbidden, "your account may not do this; ask an administrator", nil},
	CodeNotFound:                {http.StatusNotFound, "check the id and list again", hwerr.ErrNotFound},
	CodeNoAuthenticator:         {http.StatusNotFound, "insert your card or plug in your security key", nil},
	CodePINIncorrect:            {http.StatusForbidden, "type the PIN again carefully", nil},
	CodePINBlocked:              {http.StatusLocked, "unblock the PIN with your PUK (hwauthctl pin unblock) when your organisation allows it, else ask your administrator", hwerr.ErrPINBlocked},
	CodePINPolicy:               {http.StatusUnprocessableEntity, "choose a PIN that meets the rules (length, characters)", hwerr.ErrPINPolicy},
	CodePINRequired:             {http.StatusForbidden, "give the PIN with the request", hwerr.ErrPINRequired},
	CodeAuthenticatorRemoved:    {http.StatusGone, "insert the card or key again and retry", hwerr.ErrRemoved},
	CodeLimitReached:            {http.StatusConflict, "contact your administrator to delete one of your authenticators", hwerr.ErrLimit},
	CodeAlreadyRegistered:       {http.StatusConflict, "it is already registered; remove it first to register it again", nil},
	CodeRegisteredToAnotherUser: {http.StatusConflict, "use your own authenticator; an administrator can remove the other registration", nil},
	CodeNotRegistered:           {http.StatusForbidden, "register this authenticator first (often done by IT)", nil},
	CodeKindNotAllowed:          {http.StatusForbidden, "your organisation does not allow this kind of authenticator; use another one", nil},
	CodeRegistrationRequired:    {http.StatusForbidden, "set up the security info your organisation requires first", nil},
	CodeCertificateInvalid:      {http.StatusUnprocessableEntity, "ask IT for a new certificate on the card", nil},
	CodeAuthenticatorMismatch:   {http.StatusForbidden, "this card is not the one registered under its id and was sent no PIN; use your own card and tell IT", nil},
	CodeIdentityMismatch:        {http.StatusForbidden, "use your own card, or ask IT to link its identity to your account", nil},
	CodeBusy:                    {http.StatusConflict, "the authenticator is in use; try again in a moment", hwerr.ErrBusy},
	CodeBackendUnavailable:      {http.StatusServiceUnavailable, "check that the smart card service (pcscd), the TPM or the key is available, then retry", hwerr.ErrUnavailable},
	CodeNotSupported:            {http.StatusUnprocessableEntity, "use another key or algorithm", hwerr.ErrNotSupported},
	CodeWrongDevice:             {http.StatusUnprocessableEntity, "use the virtual smart card provisioned for this computer", hwerr.ErrWrongDevice},
	CodeLockout:                 {http.StatusLocked, "re-plug the security key; a TPM in lockout recovers after its lockout interval, or IT resets it", hwerr.ErrLockout},
	CodeTPMFull:                 {http.StatusInsufficientStorage, "IT: delete an unused virtual smart card on this device (hwauthctl vsc list, vsc delete)", hwerr.ErrDeviceFull},
	CodeTimeout:                 {http.StatusGatewayTimeout, "try again and touch or insert when asked", hwerr.ErrTimeout},
	CodeCanceled:                {http.StatusConflict, "start the operation again if you want to", hwerr.ErrCanceled},
	CodeEventsExpired:           {http.StatusGone, "subscribe again without since to get a fresh snapshot", nil},
	CodeTooManyAttempts:         {http.StatusTooManyRequests, "wait and try again later", nil},
	CodePossibleClone:           {http.StatusForbidden, "contact your administrator: the key may have been cloned", nil},
	CodeDeviceError:             {http.StatusBadGateway, "remove and re-insert the authenticator; replace it if this persists", hwerr.ErrProtocol},
	CodeMethodNotAllowed:        {http.StatusMethodNotAllowed, "see /usr/share/doc/hwauthd/api.md.gz for the methods of this path", nil},
	CodeTooLarge:                {http.StatusRequestEntityTooLarge, "send a smaller request", nil},
	CodeInternal:                {http.StatusInternalServerError, "retry; if it persists, report it with the hwauthd log", nil},
}

// Codes returns every defined code.
func Codes() []Code {
	out := make([]Code, 0, len(codes))
	for c := range codes {
		out = append(out, c)
	}
	return out
}

// HTTPStatus returns the HTTP status that goes with the code; unknown codes
// are 500.
func (c Code) HTTPStatus() int {
	if i, ok := codes[c]; ok {
		return i.status
	}
	return http.StatusInternalServerError
}

// Hint returns what a person should do next, in plain words.
func (c Code) Hint() string { return codes[c].hint }

// Error is the API's error envelope, sent as
// {"error": {"code": "...", "message": "...", "retries_left": 2, ...details}}.
// Details are flattened into the error object beside code and message.
type Error struct {
	Code    Code
	Message string
	// RetriesLeft is sent as retries_left when known.
	RetriesLeft hwerr.Tries
	Details     map[string]any
}

// Errorf returns an *Error with the code and a formatted message. The
// message is shown to people: never put a PIN, PUK or key in it.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Error returns the message, or the code when there is none.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	return msg
}

// Status returns the HTTP status of the error's code.
func (e *Error) Status() int { return e.Code.HTTPStatus() }

// Is makes errors.Is(err, hwerr.ErrPINBlocked) and the like true for an API
// error whose code stands for that class, so clients test one vocabulary.
func (e *Error) Is(target error) bool {
	i, ok := codes[e.Code]
	return ok && i.class != nil && i.class == target
}

// As lets errors.As find a *hwerr.PINIncorrect in a pin_incorrect error.
func (e *Error) As(target any) bool {
	p, ok := target.(**hwerr.PINIncorrect)
	if !ok || e.Code != CodePINIncorrect {
		return false
	}
	what, _ := e.Details["what"].(string)
	*p = &hwerr.PINIncorrect{What: what, RetriesLeft: e.RetriesLeft}
	return true
}

// MarshalJSON writes the envelope.
func (e *Error) MarshalJSON() ([]byte, error) {
	body := make(map[string]any, len(e.Details)+3)
	for k, v := range e.Details {
		body[k] = v
	}
	body["code"] = e.Code
	body["message"] = e.Error()
	if e.RetriesLeft.Known() {
		body["retries_left"] = e.RetriesLeft
	}
	return json.Marshal(map[string]any{"error": body})
}

// UnmarshalJSON reads the envelope; fields other than code, message and
// retries_left land in Details.
func (e *Error) UnmarshalJSON(data []byte) error {
	var env struct {
		Error map[string]json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return err
	}
	if env.Error == nil {
		return errors.New("no error object in the body")
	}
	*e = Error{}
	for k, raw := range env.Error {
		if err := e.setField(k, raw); err != nil {
			return fmt.Errorf("error field %s: %w", k, err)
		}
	}
	return nil
}

// setField decodes one field of the error object.
func (e *Error) setField(k string, raw json.RawMessage) error {
	switch k {
	case "code":
		return json.Unmarshal(raw, &e.Code)
	case "message":
		return json.Unmarshal(raw, &e.Message)
	case "retries_left":
		return json.Unmarshal(raw, &e.RetriesLeft)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return err
	}
	if e.Details == nil {
		e.Details = map[string]any{}
	}
	e.Details[k] = v
	return nil
}

// FromHW translates an error wrapping one of the hwerr classes (or a
// *hwerr.PINIncorrect) to an API error with the matching code and a message
// for people; it returns nil when err carries no hwerr class. The daemon's
// error mapper calls it after handling its own errors.
func FromHW(err error) *Error {
	var pi *hwerr.PINIncorrect
	if errors.As(err, &pi) {
		return pinIncorrect(pi)
	}
	if errors.Is(err, hwerr.ErrPUKBlocked) {
		return &Error{Code: CodePINBlocked, Message: "the PIN and the PUK are blocked; the card must be reset or replaced, ask IT",
			Details: map[string]any{"puk_blocked": true}}
	}
	for c, i := range codes {
		if i.class != nil && errors.Is(err, i.class) {
			// The error's own words say what happened (errors never carry
			// secrets); the hint says what to do next (R10).
			return &Error{Code: c, Message: err.Error() + "; " + i.hint}
		}
	}
	return nil
}

// pinIncorrect builds the pin_incorrect error, with retries_left when known.
func pinIncorrect(pi *hwerr.PINIncorrect) *Error {
	e := &Error{Code: CodePINIncorrect, Message: pi.Error(), RetriesLeft: pi.RetriesLeft}
	if pi.What != "" {
		e.Details = map[string]any{"what": pi.What}
	}
	return e
}

// PINBlockedAdvice says what a person whose PIN on a is blocked can do, for
// the pin_blocked answer: how is "puk" when they may unblock it themselves
// with the PUK (a card or virtual card, selfService from
// policy.self_service_unblock), else "administrator"; msg is the sentence.
func PINBlockedAdvice(a Authenticator, selfService bool) (how, msg string) {
	switch {
	case a.Kind == KindSecurityKey:
		return "administrator", "The PIN of your security key is blocked, and as a key has no PUK only a reset that deletes its credentials can help: ask your administrator."
	case selfService:
		return "puk", fmt.Sprintf("Your PIN is blocked: unblock it with your PUK (hwauthctl pin unblock %s), or ask your administrator if you do not have it.", a.ID)
	}
	return "administrator", "Your PIN is blocked: ask your administrator to unblock it."
}
