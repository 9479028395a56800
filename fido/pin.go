package fido

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"unicode/utf8"
	"unsafe"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Info is what a key says about itself (authenticatorGetInfo, CTAP 2.1
// §6.4) and its PIN retry counter (§6.5.5.2 getPINRetries).
type Info struct {
	// AAGUID is the model id, lower-case hex.
	AAGUID       string
	Versions     []string
	Extensions   []string
	Options      map[string]bool
	PINProtocols []int
	// PINSet reports the clientPin option; ResidentKeys the rk option;
	// UserVerification the uv option (built-in verification).
	PINSet           bool
	ResidentKeys     bool
	UserVerification bool
	// PINRetries is the PIN retry counter, unknown when the key has no PIN
	// set.
	PINRetries hwerr.Tries
}

// Info reads the key's getInfo and, when a PIN is set, its retry counter.
func (k *Key) Info(ctx context.Context) (*Info, error) {
	var info *Info
	err := k.run(ctx, "read security key info", false, func() error {
		di, err := k.dev.Info()
		if err != nil {
			return err
		}
		info = convertInfo(di)
		if info.PINSet {
			n, err := k.dev.RetryCount()
			if err != nil {
				return err
			}
			info.PINRetries = hwerr.TriesLeft(n)
		}
		return nil
	})
	return info, err
}

func convertInfo(di *libfido2.DeviceInfo) *Info {
	info := &Info{
		AAGUID:     hex.EncodeToString(di.AAGUID),
		Versions:   di.Versions,
		Extensions: di.Extensions,
		Options:    map[string]bool{},
	}
	for _, p := range di.Protocols {
		info.PINProtocols = append(info.PINProtocols, int(p))
	}
	for _, o := range di.Options {
		info.Options[o.Name] = o.Value == libfido2.True
	}
	info.PINSet = info.Options["clientPin"]
	info.ResidentKeys = info.Options["rk"]
	info.UserVerification = info.Options["uv"]
	return info
}

// checkPIN applies the CTAP PIN rules on our side (§6.5.1: at least 4 code
// points, at most 63 bytes) so that a bad PIN never costs a retry.
func checkPIN(pin []byte) error {
	if len(pin) > 63 || utf8.RuneCount(pin) < 4 || !utf8.Valid(pin) {
		return fmt.Errorf("PIN must have 4 to 63 characters: %w", hwerr.ErrPINPolicy)
	}
	return nil
}

// pinString views pin as a string without copying it into the Go heap; the
// caller clears pin after the go-libfido2 call. go-libfido2 itself copies
// it with C.CString and never frees or zeroes that copy (a known defect).
func pinString(pin []byte) string {
	if len(pin) == 0 {
		return ""
	}
	return unsafe.String(&pin[0], len(pin))
}

// SetPIN sets the first PIN on a key that has none (§6.5.5.5 setPIN). pin
// is zeroed before SetPIN returns.
func (k *Key) SetPIN(ctx context.Context, pin []byte) error {
	defer clear(pin)
	if err := checkPIN(pin); err != nil {
		return fmt.Errorf("set PIN: %w", err)
	}
	return k.run(ctx, "set PIN", false, func() error {
		return k.dev.SetPIN(pinString(pin), "")
	})
}

// ChangePIN changes the PIN (§6.5.5.6 changePIN). A wrong old PIN gives a
// *hwerr.PINIncorrect with the retries left. Both buffers are zeroed
// before ChangePIN returns.
func (k *Key) ChangePIN(ctx context.Context, oldPIN, newPIN []byte) error {
	defer clear(oldPIN)
	defer clear(newPIN)
	if len(oldPIN) == 0 {
		return fmt.Errorf("change PIN: %w", hwerr.ErrPINRequired)
	}
	if err := checkPIN(newPIN); err != nil {
		return fmt.Errorf("change PIN: %w", err)
	}
	return k.run(ctx, "change PIN", false, func() error {
		return k.dev.SetPIN(pinString(newPIN), pinString(oldPIN))
	})
}

// verifyRPID is the relying party of VerifyPIN's probe; .invalid never
// resolves (RFC 6761), so no real credential can match.
const verifyRPID = "hwauthd-verify-pin.invalid"

// VerifyPIN checks the PIN by obtaining a PIN/UV auth token, the only
// verification go-libfido2 allows without credential management: it asks
// for an assertion with the PIN, no user presence and an allow list holding
// one random credential id. libfido2 first gets the token (a wrong PIN
// fails there and costs a retry, as any verification does); the key then
// answers "no credentials", which means the PIN was right. No touch is
// needed and nothing is stored. pin is zeroed before VerifyPIN returns.
func (k *Key) VerifyPIN(ctx context.Context, pin []byte) error {
	defer clear(pin)
	if len(pin) == 0 {
		return fmt.Errorf("verify PIN: %w", hwerr.ErrPINRequired)
	}
	cdh := make([]byte, 32)
	probe := make([]byte, 32)
	rand.Read(cdh)
	rand.Read(probe)
	err := k.run(ctx, "verify PIN", false, func() error {
		_, err := k.dev.Assertion(verifyRPID, cdh, [][]byte{probe}, pinString(pin), &libfido2.AssertionOpts{UP: libfido2.False})
		return err
	})
	if errors.Is(err, hwerr.ErrNotFound) {
		return nil
	}
	return err
}
