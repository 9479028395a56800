package softkey

// CTAP2 status codes, CTAP 2.1 §8.2.
const (
	statusOK                byte = 0x00
	errInvalidCommand       byte = 0x01
	errInvalidParameter     byte = 0x02
	errInvalidLength        byte = 0x03
	errInvalidCBOR          byte = 0x12
	errMissingParameter     byte = 0x14
	errCredentialExcluded   byte = 0x19
	errUnsupportedAlgorithm byte = 0x26
	errUnsupportedOption    byte = 0x2B
	errInvalidOption        byte = 0x2C
	errKeepaliveCancel      byte = 0x2D
	errNoCredentials        byte = 0x2E
	errUserActionTimeout    byte = 0x2F
	errNotAllowed           byte = 0x30
	errPINInvalid           byte = 0x31
	errPINBlocked           byte = 0x32
	errPINAuthInvalid       byte = 0x33
	errPINAuthBlocked       byte = 0x34
	errPINNotSet            byte = 0x35
	errPUATRequired         byte = 0x36
	errPINPolicyViolation   byte = 0x37
	errOther                byte = 0x7F
)

// CTAP2 command bytes, CTAP 2.1 §6.
const (
	cmdMakeCredential   byte = 0x01
	cmdGetAssertion     byte = 0x02
	cmdGetInfo          byte = 0x04
	cmdClientPIN        byte = 0x06
	cmdReset            byte = 0x07
	cmdGetNextAssertion byte = 0x08
)

// COSE algorithm identifiers (RFC 9053).
const (
	algES256 = -7
	algEdDSA = -8
	algECDH  = -25
)
