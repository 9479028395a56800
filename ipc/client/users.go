package client

import (
	"context"

	"github.com/hwauthd/hwauthd/ipc"
)

// Registrations returns a user's registered authenticators.
func (c *Client) Registrations(ctx context.Context, user string) (*ipc.RegistrationsResponse, error) {
	var out ipc.RegistrationsResponse
	return &out, c.call(ctx, "GET", "/v1/users/"+esc(user)+"/registrations", nil, &out)
}

// Register registers a present authenticator for user, proving possession
// with the PIN.
func (c *Client) Register(ctx context.Context, user string, req ipc.RegisterRequest) (*ipc.Registration, error) {
	var out ipc.Registration
	return &out, c.callSecret(ctx, "POST", "/v1/users/"+esc(user)+"/registrations", &req, &out)
}

// RemoveRegistration removes a registration; it cannot be undone. When it
// was the default, the default moves to another registration, which the
// answer names.
func (c *Client) RemoveRegistration(ctx context.Context, user, id string) (*ipc.RegistrationRemoved, error) {
	var out ipc.RegistrationRemoved
	return &out, c.call(ctx, "DELETE", "/v1/users/"+esc(user)+"/registrations/"+esc(id), nil, &out)
}

// SetDefault makes the registration the user's default.
func (c *Client) SetDefault(ctx context.Context, user, registration string) error {
	body, err := jsonBody(ipc.SetDefaultRequest{Registration: registration})
	if err != nil {
		return err
	}
	return c.call(ctx, "PUT", "/v1/users/"+esc(user)+"/default", body, nil)
}

// Forget deletes what hwauthd remembers for the user.
func (c *Client) Forget(ctx context.Context, user string) (*ipc.ForgetResponse, error) {
	var out ipc.ForgetResponse
	return &out, c.call(ctx, "POST", "/v1/users/"+esc(user)+"/forget", nil, &out)
}

// Requirements asks what the policy requires the user to register before
// they may sign in, and what is still missing.
func (c *Client) Requirements(ctx context.Context, user string) (*ipc.Requirements, error) {
	var out ipc.Requirements
	return &out, c.call(ctx, "GET", "/v1/users/"+esc(user)+"/requirements", nil, &out)
}

// SignIn opens a session for req.User after verifying the PIN and proving
// possession of the authenticator.
func (c *Client) SignIn(ctx context.Context, req ipc.SignInRequest) (*ipc.Session, error) {
	var out ipc.SignInResponse
	return &out.Session, c.callSecret(ctx, "POST", "/v1/sign-in", &req, &out)
}

// Sessions lists the sessions the caller may see.
func (c *Client) Sessions(ctx context.Context) ([]ipc.Session, error) {
	var out ipc.SessionsResponse
	return out.Sessions, c.call(ctx, "GET", "/v1/sessions", nil, &out)
}

// SignOut ends a session.
func (c *Client) SignOut(ctx context.Context, id string) error {
	return c.call(ctx, "DELETE", "/v1/sessions/"+esc(id), nil, nil)
}

// OpenSession opens a pending session for the full session lifetime and
// records the login session it belongs to.
func (c *Client) OpenSession(ctx context.Context, id string, req ipc.OpenSessionRequest) (*ipc.Session, error) {
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	var out ipc.SignInResponse
	return &out.Session, c.call(ctx, "POST", "/v1/sessions/"+esc(id)+"/open", body, &out)
}

// SignOutAndForget ends a session and deletes its user's remembered sign-in
// information; the answer says what was deleted.
func (c *Client) SignOutAndForget(ctx context.Context, id string) (*ipc.ForgetResponse, error) {
	var out ipc.ForgetResponse
	return &out, c.call(ctx, "DELETE", "/v1/sessions/"+esc(id)+"?forget=true", nil, &out)
}
