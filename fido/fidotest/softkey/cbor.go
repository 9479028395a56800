package softkey

import (
	"github.com/fxamacker/cbor/v2"
)

// encMode encodes with the CTAP2 canonical CBOR rules, CTAP 2.1 §8.
var encMode = func() cbor.EncMode {
	m, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// decMode decodes requests from outside with bounds.
var decMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		MaxNestedLevels:  8,
		MaxArrayElements: 256,
		MaxMapPairs:      256,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// rpEntity is PublicKeyCredentialRpEntity.
type rpEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
}

// userEntity is PublicKeyCredentialUserEntity.
type userEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
}

// credDescriptor is PublicKeyCredentialDescriptor.
type credDescriptor struct {
	ID   []byte `cbor:"id"`
	Type string `cbor:"type"`
}

// credParam is PublicKeyCredentialParameters.
type credParam struct {
	Alg  int    `cbor:"alg"`
	Type string `cbor:"type"`
}

// makeCredentialReq is the authenticatorMakeCredential request, CTAP 2.1 §6.1.
type makeCredentialReq struct {
	ClientDataHash []byte           `cbor:"1,keyasint"`
	RP             rpEntity         `cbor:"2,keyasint"`
	User           userEntity       `cbor:"3,keyasint"`
	Params         []credParam      `cbor:"4,keyasint"`
	Exclude        []credDescriptor `cbor:"5,keyasint,omitempty"`
	Extensions     cbor.RawMessage  `cbor:"6,keyasint,omitempty"`
	Options        map[string]bool  `cbor:"7,keyasint,omitempty"`
	PINUVAuthParam []byte           `cbor:"8,keyasint,omitempty"`
	PINUVProtocol  int              `cbor:"9,keyasint,omitempty"`
}

// makeCredentialResp is the authenticatorMakeCredential response.
type makeCredentialResp struct {
	Fmt      string         `cbor:"1,keyasint"`
	AuthData []byte         `cbor:"2,keyasint"`
	AttStmt  map[string]any `cbor:"3,keyasint"`
}

// getAssertionReq is the authenticatorGetAssertion request, CTAP 2.1 §6.2.
type getAssertionReq struct {
	RPID           string           `cbor:"1,keyasint"`
	ClientDataHash []byte           `cbor:"2,keyasint"`
	Allow          []credDescriptor `cbor:"3,keyasint,omitempty"`
	Extensions     cbor.RawMessage  `cbor:"4,keyasint,omitempty"`
	Options        map[string]bool  `cbor:"5,keyasint,omitempty"`
	PINUVAuthParam []byte           `cbor:"6,keyasint,omitempty"`
	PINUVProtocol  int              `cbor:"7,keyasint,omitempty"`
}

// getAssertionResp is the authenticatorGetAssertion response.
type getAssertionResp struct {
	Credential credDescriptor `cbor:"1,keyasint"`
	AuthData   []byte         `cbor:"2,keyasint"`
	Signature  []byte         `cbor:"3,keyasint"`
	User       *userEntity    `cbor:"4,keyasint,omitempty"`
	Count      int            `cbor:"5,keyasint,omitempty"`
}

// getInfoResp is the authenticatorGetInfo response, CTAP 2.1 §6.4.
type getInfoResp struct {
	Versions     []string        `cbor:"1,keyasint"`
	Extensions   []string        `cbor:"2,keyasint,omitempty"`
	AAGUID       []byte          `cbor:"3,keyasint"`
	Options      map[string]bool `cbor:"4,keyasint"`
	MaxMsgSize   int             `cbor:"5,keyasint"`
	PINProtocols []int           `cbor:"6,keyasint"`
	Algorithms   []credParam     `cbor:"10,keyasint"`
}

// clientPINReq is the authenticatorClientPIN request, CTAP 2.1 §6.5.5.
type clientPINReq struct {
	Protocol       int      `cbor:"1,keyasint,omitempty"`
	SubCommand     int      `cbor:"2,keyasint"`
	KeyAgreement   *coseKey `cbor:"3,keyasint,omitempty"`
	PINUVAuthParam []byte   `cbor:"4,keyasint,omitempty"`
	NewPINEnc      []byte   `cbor:"5,keyasint,omitempty"`
	PINHashEnc     []byte   `cbor:"6,keyasint,omitempty"`
	Permissions    int      `cbor:"9,keyasint,omitempty"`
	RPID           string   `cbor:"10,keyasint,omitempty"`
}

// clientPINResp is the authenticatorClientPIN response.
type clientPINResp struct {
	KeyAgreement *coseKey `cbor:"1,keyasint,omitempty"`
	Token        []byte   `cbor:"2,keyasint,omitempty"`
	Retries      *int     `cbor:"3,keyasint,omitempty"`
	PowerCycle   *bool    `cbor:"4,keyasint,omitempty"`
}

// coseKey is a COSE_Key with the members CTAP uses (RFC 9052 §7).
type coseKey struct {
	Kty int    `cbor:"1,keyasint"`
	Alg int    `cbor:"3,keyasint,omitempty"`
	Crv int    `cbor:"-1,keyasint,omitempty"`
	X   []byte `cbor:"-2,keyasint,omitempty"`
	Y   []byte `cbor:"-3,keyasint,omitempty"`
}
