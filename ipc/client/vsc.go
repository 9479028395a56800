package client

import (
	"context"
	"encoding/json"

	"github.com/hwauthd/hwauthd/ipc"
)

// CreateVirtualSmartcard provisions a TPM virtual smart card (admin).
func (c *Client) CreateVirtualSmartcard(ctx context.Context, req ipc.VirtualSmartcardCreateRequest) (*ipc.VirtualSmartcard, error) {
	var out ipc.VirtualSmartcard
	return &out, c.callSecret(ctx, "POST", "/v1/virtual-smartcards", &req, &out)
}

// VirtualSmartcards lists the virtual smart cards provisioned on this
// device (admin).
func (c *Client) VirtualSmartcards(ctx context.Context) ([]ipc.VirtualSmartcard, error) {
	var out ipc.VirtualSmartcardsResponse
	return out.VirtualSmartcards, c.call(ctx, "GET", "/v1/virtual-smartcards", nil, &out)
}

// VirtualSmartcard returns one virtual smart card (admin).
func (c *Client) VirtualSmartcard(ctx context.Context, id string) (*ipc.VirtualSmartcard, error) {
	var out ipc.VirtualSmartcard
	return &out, c.call(ctx, "GET", "/v1/virtual-smartcards/"+esc(id), nil, &out)
}

// DeleteVirtualSmartcard deletes a virtual smart card and its TPM key (admin).
func (c *Client) DeleteVirtualSmartcard(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/v1/virtual-smartcards/"+esc(id), nil, nil)
}

// VirtualSmartcardCSR returns a PEM CSR signed in the TPM with the card's
// key, authorized by req.PIN (admin). The caller keeps ownership of the PIN.
func (c *Client) VirtualSmartcardCSR(ctx context.Context, id string, req ipc.CSRRequest) (string, error) {
	var out ipc.CSRResponse
	return out.CSR, c.callSecret(ctx, "POST", "/v1/virtual-smartcards/"+esc(id)+"/csr", &req, &out)
}

// ImportVirtualSmartcardCertificate stores the issued PEM certificate (admin).
func (c *Client) ImportVirtualSmartcardCertificate(ctx context.Context, id, certPEM string) (*ipc.VirtualSmartcard, error) {
	body, err := json.Marshal(ipc.CertificateImport{Certificate: certPEM})
	if err != nil {
		return nil, err
	}
	var out ipc.VirtualSmartcard
	return &out, c.call(ctx, "PUT", "/v1/virtual-smartcards/"+esc(id)+"/certificate", body, &out)
}

// VirtualSmartcardAttestation starts the endorsement-key attestation
// exchange for a card (admin).
func (c *Client) VirtualSmartcardAttestation(ctx context.Context, id string) (*ipc.VSCAttestationRequest, error) {
	var out ipc.VSCAttestationRequest
	return &out, c.call(ctx, "POST", "/v1/virtual-smartcards/"+esc(id)+"/attestation", nil, &out)
}

// ActivateVirtualSmartcardAttestation opens a verifier's challenge in the
// card's TPM (admin).
func (c *Client) ActivateVirtualSmartcardAttestation(ctx context.Context, id string, ch ipc.VSCAttestationChallenge) (*ipc.VSCAttestationAnswer, error) {
	body, err := json.Marshal(ch)
	if err != nil {
		return nil, err
	}
	var out ipc.VSCAttestationAnswer
	return &out, c.call(ctx, "POST", "/v1/virtual-smartcards/"+esc(id)+"/attestation/activate", body, &out)
}

// VirtualSmartcardAdminChallenge asks a card for an admin-key unblock
// challenge (admin).
func (c *Client) VirtualSmartcardAdminChallenge(ctx context.Context, id string) (*ipc.VSCUnblockChallenge, error) {
	var out ipc.VSCUnblockChallenge
	return &out, c.call(ctx, "POST", "/v1/virtual-smartcards/"+esc(id)+"/unblock", []byte("{}"), &out)
}

// UnblockVirtualSmartcard unblocks a card with the admin key's responses
// to its challenge and sets a new PIN (admin).
func (c *Client) UnblockVirtualSmartcard(ctx context.Context, id string, req ipc.VSCUnblockRequest) (*ipc.VirtualSmartcard, error) {
	var out ipc.VirtualSmartcard
	return &out, c.callSecret(ctx, "POST", "/v1/virtual-smartcards/"+esc(id)+"/unblock", &req, &out)
}
