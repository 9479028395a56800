// Package ipc holds the contract of hwauthd's socket API: the JSON types of
// every resource and request, the event types, and the error envelope with
// its stable codes. It has no dependency on the daemon or on hardware, so
// clients (hwauthctl, the PAM helper, sign-in clients) import it alone.
//
// Field names are the contract (snake_case, see docs/api.md); fields may be
// added, never renamed. Binary values are []byte, which encoding/json writes
// as standard base64; certificates and public keys are PEM strings.
package ipc
