package tpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// errAuthFailed marks a TPM authorization failure (TPM_RC_AUTH_FAIL or
// TPM_RC_BAD_AUTH). Unsealing with a PIN or PUK, the PIN logic turns it
// into *hwerr.PINIncorrect. Anywhere else (the signing key refusing the K
// unsealed for it) the card record is inconsistent: hwerr.ErrInvalidInput.
var errAuthFailed = fmt.Errorf("the TPM refused the card's stored secret: %w", hwerr.ErrInvalidInput)

// lockoutMessage is what a TPM_RC_LOCKOUT says to the person.
const lockoutMessage = "this device's TPM is in dictionary-attack lockout after too many wrong authorizations " +
	"(not a virtual smart card PIN: those count on their own); it recovers by itself after its lockout interval, or IT resets it"

// classify decodes a TPM response code into the hwerr classes (TPM 2.0 Part 2
// §6.6). Errors that are already classified (transport, context) pass through.
func classify(err error) error {
	var rc tpm2.TPMRC
	switch {
	case err == nil:
		return nil
	case errors.Is(err, tpm2.TPMRCLockout):
		return fmt.Errorf("%s: %w", lockoutMessage, hwerr.ErrLockout)
	case errors.Is(err, tpm2.TPMRCAuthFail), errors.Is(err, tpm2.TPMRCBadAuth):
		return errAuthFailed
	case errors.Is(err, tpm2.TPMRCObjectMemory), errors.Is(err, tpm2.TPMRCSessionMemory),
		errors.Is(err, tpm2.TPMRCRetry), errors.Is(err, tpm2.TPMRCYielded), errors.Is(err, tpm2.TPMRCTesting):
		return fmt.Errorf("%w: %v", hwerr.ErrBusy, err)
	case errors.Is(err, tpm2.TPMRCNVSpace):
		return fmt.Errorf("the TPM has no room left for another virtual smart card; delete one: %w: %v", hwerr.ErrDeviceFull, err)
	case errors.Is(err, tpm2.TPMRCNVRate):
		return fmt.Errorf("%w: %v", hwerr.ErrBusy, err)
	case errors.As(err, &rc):
		return fmt.Errorf("%w: %v", hwerr.ErrProtocol, err)
	default:
		return err
	}
}
