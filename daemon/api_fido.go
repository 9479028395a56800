package daemon

import (
	"context"
	"crypto/sha256"
	"net/http"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// securityKey returns the present FIDO2 key named in the path.
func (d *Daemon) securityKey(id string) (device.SecurityKey, error) {
	dev, err := d.device(id)
	if err != nil {
		return nil, err
	}
	sk, ok := dev.(device.SecurityKey)
	if !ok {
		return nil, ipc.Errorf(ipc.CodeNotSupported, "authenticator %s is not a security key", id)
	}
	return sk, nil
}

// postPINSet sets the first PIN of a security key. A key registered to
// nobody may be prepared by any local user under self-service (it is the
// first step of registering one's own key).
func (d *Daemon) postPINSet(w http.ResponseWriter, r *http.Request) error {
	var req ipc.PINSetRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := requireSecret("new_pin", req.NewPIN); err != nil {
		return err
	}
	sk, err := d.securityKey(r.PathValue("id"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	if err := sk.SetPIN(ctx, req.NewPIN); err != nil {
		return err
	}
	return d.writePINResult(ctx, w, sk)
}

// postCredential is FIDO2 make-credential on a present key.
func (d *Daemon) postCredential(w http.ResponseWriter, r *http.Request) error {
	var req ipc.MakeCredentialRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case len(req.ClientDataHash) != sha256.Size:
		return ipc.Errorf(ipc.CodeBadRequest, "client_data_hash must be a SHA-256 hash (32 bytes), got %d", len(req.ClientDataHash))
	case len(req.UserID) == 0 || len(req.UserID) > 64:
		return ipc.Errorf(ipc.CodeBadRequest, "user_id must be 1 to 64 bytes")
	case req.UserName == "":
		return ipc.Errorf(ipc.CodeBadRequest, "user_name is required")
	}
	rp := req.RPID
	if rp == "" {
		rp = d.cfg.RelyingParty()
	}
	return d.withSecurityKey(r, func(ctx context.Context, sk device.SecurityKey) error {
		c, err := sk.MakeCredential(ctx, device.MakeCredential{RPID: rp, UserID: req.UserID, UserName: req.UserName,
			ClientDataHash: req.ClientDataHash, Algorithm: req.Algorithm, ResidentKey: req.ResidentKey, PIN: req.PIN})
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusCreated, ipc.Credential{
			CredentialID: c.ID,
			PublicKey:    certutil.EncodePEM(certutil.PEMPublicKey, c.PublicKeyDER),
			AuthData:     c.AuthData,
		})
	})
}

// postAssertion is FIDO2 get-assertion on a present key; the client
// verifies it with the credential's public key.
func (d *Daemon) postAssertion(w http.ResponseWriter, r *http.Request) error {
	var req ipc.GetAssertionRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if len(req.ClientDataHash) != sha256.Size {
		return ipc.Errorf(ipc.CodeBadRequest, "client_data_hash must be a SHA-256 hash (32 bytes), got %d", len(req.ClientDataHash))
	}
	for _, c := range req.CredentialIDs {
		if len(c) == 0 {
			return ipc.Errorf(ipc.CodeBadRequest, "credential_ids must not hold an empty id")
		}
	}
	rp := req.RPID
	if rp == "" {
		rp = d.cfg.RelyingParty()
	}
	return d.withSecurityKey(r, func(ctx context.Context, sk device.SecurityKey) error {
		a, err := sk.GetAssertion(ctx, device.GetAssertion{RPID: rp, ClientDataHash: req.ClientDataHash,
			CredentialIDs: req.CredentialIDs, UserPresence: req.UserPresence, PIN: req.PIN})
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, ipc.Assertion{CredentialID: a.CredentialID, AuthData: a.AuthData, Signature: a.Signature})
	})
}

// withSecurityKey runs fn, which presents a PIN, on the security key named
// in the path, under the failure limit for the key and the calling user.
func (d *Daemon) withSecurityKey(r *http.Request, fn func(context.Context, device.SecurityKey) error) error {
	id := r.PathValue("id")
	sk, err := d.securityKey(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	return d.signIn.Attempt(signin.Key{Authenticator: id, User: d.actingUser(r), Secret: signin.SecretPIN}, sk, func() error {
		return fn(ctx, sk)
	})
}
