package client

import (
	"context"

	"github.com/hwauthd/hwauthd/ipc"
)

// Links returns the certificate identities linked to a local account
// (admin).
func (c *Client) Links(ctx context.Context, user string) (*ipc.LinksResponse, error) {
	var out ipc.LinksResponse
	return &out, c.call(ctx, "GET", "/v1/users/"+esc(user)+"/links", nil, &out)
}

// Link links a certificate identity ("upn:…", "email:…", "cn:…",
// "subject:…") to a local account (admin) and returns the new link.
func (c *Client) Link(ctx context.Context, user, identity string) (*ipc.Link, error) {
	body, err := jsonBody(ipc.LinkRequest{Identity: identity})
	if err != nil {
		return nil, err
	}
	var out ipc.Link
	return &out, c.call(ctx, "POST", "/v1/users/"+esc(user)+"/links", body, &out)
}

// Unlink removes the link of an identity to a local account (admin).
func (c *Client) Unlink(ctx context.Context, user, identity string) error {
	return c.call(ctx, "DELETE", "/v1/users/"+esc(user)+"/links/"+esc(identity), nil, nil)
}
