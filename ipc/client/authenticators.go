package client

import (
	"context"

	"github.com/hwauthd/hwauthd/ipc"
)

// Status returns GET /v1/status.
func (c *Client) Status(ctx context.Context) (*ipc.Status, error) {
	b, err := c.answer(ctx, "GET", "/v1/status", nil)
	if err != nil {
		return &ipc.Status{}, err
	}
	return c.decodeStatus(b)
}

// Readers returns GET /v1/readers.
func (c *Client) Readers(ctx context.Context) ([]ipc.Reader, error) {
	var out ipc.ReadersResponse
	return out.Readers, c.call(ctx, "GET", "/v1/readers", nil, &out)
}

// Authenticators returns the present authenticators (GET /v1/authenticators).
func (c *Client) Authenticators(ctx context.Context) ([]ipc.Authenticator, error) {
	var out ipc.AuthenticatorsResponse
	return out.Authenticators, c.call(ctx, "GET", "/v1/authenticators", nil, &out)
}

// Authenticator returns one authenticator with its certificates.
func (c *Client) Authenticator(ctx context.Context, id string) (*ipc.Authenticator, error) {
	var out ipc.Authenticator
	return &out, c.call(ctx, "GET", "/v1/authenticators/"+esc(id), nil, &out)
}

// VerifyPIN verifies the PIN on the authenticator. The caller keeps
// ownership of pin and zeroes it; the encoded request is zeroed here.
func (c *Client) VerifyPIN(ctx context.Context, id string, pin []byte) (*ipc.PINResult, error) {
	var out ipc.PINResult
	req := ipc.PINVerifyRequest{PIN: pin}
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/pin/verify", &req, &out)
}

// ChangePIN changes the PIN from pin to newPIN.
func (c *Client) ChangePIN(ctx context.Context, id string, pin, newPIN []byte) (*ipc.PINResult, error) {
	var out ipc.PINResult
	req := ipc.PINChangeRequest{PIN: pin, NewPIN: newPIN}
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/pin/change", &req, &out)
}

// SetPIN sets the first PIN of a security key that has none (CTAP 2.1
// §6.5.5.5 setPIN). The caller keeps ownership of newPIN and zeroes it.
func (c *Client) SetPIN(ctx context.Context, id string, newPIN []byte) (*ipc.PINResult, error) {
	var out ipc.PINResult
	req := ipc.PINSetRequest{NewPIN: newPIN}
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/pin/set", &req, &out)
}

// UnblockPIN sets a new PIN with the PUK.
func (c *Client) UnblockPIN(ctx context.Context, id string, puk, newPIN []byte) (*ipc.PINResult, error) {
	var out ipc.PINResult
	req := ipc.PINUnblockRequest{PUK: puk, NewPIN: newPIN}
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/pin/unblock", &req, &out)
}

// Sign signs req.Digest with a key of the authenticator and returns the
// signature (ASN.1 DER for ECDSA).
func (c *Client) Sign(ctx context.Context, id string, req ipc.SignRequest) ([]byte, error) {
	var out ipc.SignResponse
	err := c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/sign", &req, &out)
	return out.Signature, err
}

// MakeCredential creates a FIDO2 credential on a security key.
func (c *Client) MakeCredential(ctx context.Context, id string, req ipc.MakeCredentialRequest) (*ipc.Credential, error) {
	var out ipc.Credential
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/credentials", &req, &out)
}

// GetAssertion gets a FIDO2 assertion from a security key.
func (c *Client) GetAssertion(ctx context.Context, id string, req ipc.GetAssertionRequest) (*ipc.Assertion, error) {
	var out ipc.Assertion
	return &out, c.callSecret(ctx, "POST", "/v1/authenticators/"+esc(id)+"/assertions", &req, &out)
}
