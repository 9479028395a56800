package daemon

import (
	"context"
	"net/http"
	"strings"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// getAuthenticators lists the present authenticators with the PIN state
// each reports now (read without spending a try), not a number remembered
// from an earlier request: another application may have spent tries since.
// The description is taken after that read, which may have taught the
// device something new (certificates another application wrote). A device
// that cannot tell in time keeps the state last seen.
func (d *Daemon) getAuthenticators(w http.ResponseWriter, r *http.Request) error {
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	infos := d.manager.Authenticators()
	as := make([]ipc.Authenticator, 0, len(infos))
	for _, info := range infos {
		if dev, err := d.manager.Device(info.ID); err == nil {
			if st, err := dev.PINState(ctx); err == nil {
				info = dev.Info()
				info.PIN = st
			}
		}
		as = append(as, authenticatorToAPI(info))
	}
	return server.WriteJSON(w, http.StatusOK, ipc.AuthenticatorsResponse{Authenticators: as})
}

// getAuthenticator answers one authenticator with its PIN state read afresh
// (without spending a try) and the description as that read left it.
func (d *Daemon) getAuthenticator(w http.ResponseWriter, r *http.Request) error {
	return d.withDevice(r, "", func(ctx context.Context, id string, dev device.Device) error {
		st, err := dev.PINState(ctx)
		if err != nil {
			return err
		}
		info := dev.Info()
		info.PIN = st
		return server.WriteJSON(w, http.StatusOK, authenticatorToAPI(info))
	})
}

func (d *Daemon) postPINVerify(w http.ResponseWriter, r *http.Request) error {
	var req ipc.PINVerifyRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := requireSecret("pin", req.PIN); err != nil {
		return err
	}
	return d.withDevice(r, signin.SecretPIN, func(ctx context.Context, id string, dev device.Device) error {
		if err := dev.VerifyPIN(ctx, req.PIN); err != nil {
			return err
		}
		return d.writePINResult(ctx, w, dev)
	})
}

func (d *Daemon) postPINChange(w http.ResponseWriter, r *http.Request) error {
	var req ipc.PINChangeRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := errorsJoin(requireSecret("pin", req.PIN), requireSecret("new_pin", req.NewPIN)); err != nil {
		return err
	}
	return d.withDevice(r, signin.SecretPIN, func(ctx context.Context, id string, dev device.Device) error {
		if err := dev.ChangePIN(ctx, req.PIN, req.NewPIN); err != nil {
			return err
		}
		return d.writePINResult(ctx, w, dev)
	})
}

func (d *Daemon) postPINUnblock(w http.ResponseWriter, r *http.Request) error {
	var req ipc.PINUnblockRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if err := errorsJoin(requireSecret("puk", req.PUK), requireSecret("new_pin", req.NewPIN)); err != nil {
		return err
	}
	return d.withDevice(r, signin.SecretPUK, func(ctx context.Context, id string, dev device.Device) error {
		if err := dev.UnblockPIN(ctx, req.PUK, req.NewPIN); err != nil {
			return err
		}
		return d.writePINResult(ctx, w, dev)
	})
}

func (d *Daemon) postSign(w http.ResponseWriter, r *http.Request) error {
	var req ipc.SignRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	alg, ok := device.ParseSignAlgorithm(req.Algorithm)
	switch {
	case req.Key == "":
		return ipc.Errorf(ipc.CodeBadRequest, "key is required (a slot such as 9a)")
	case !ok:
		return ipc.Errorf(ipc.CodeBadRequest, "algorithm %q is not one of %s", req.Algorithm, device.SignAlgorithmNames())
	case len(req.Digest) != alg.Hash().Size():
		return ipc.Errorf(ipc.CodeBadRequest, "digest must be %d bytes for %s, got %d", alg.Hash().Size(), alg, len(req.Digest))
	}
	return d.withDevice(r, signin.SecretPIN, func(ctx context.Context, id string, dev device.Device) error {
		pin := []byte(req.PIN)
		if len(pin) == 0 && d.cfg.SignIn.CachePIN {
			// Within a session with signin.cache_pin on, no PIN is needed.
			pin = d.sessions.CachedPIN(d.callerOf(r).name, id)
			defer clear(pin)
		}
		sig, err := dev.Sign(ctx, device.SignRequest{Key: req.Key, Algorithm: alg, Digest: req.Digest, PIN: pin})
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, ipc.SignResponse{Signature: sig})
	})
}

// withDevice runs fn on the authenticator named in the path, bounded by the
// configured request timeout. With a secret ("PIN" or "PUK"), fn presents it
// to the device: the attempt runs under the failure limit for this
// authenticator and the calling user, a blocked PIN answers pin_blocked with
// advice, and the try that blocked it announces pin-blocked (signin.Service.Attempt).
// Who may call is the route's checker's to decide.
func (d *Daemon) withDevice(r *http.Request, secret string, fn func(ctx context.Context, id string, dev device.Device) error) error {
	id := r.PathValue("id")
	dev, err := d.device(id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	if secret == "" {
		return fn(ctx, id, dev)
	}
	return d.signIn.Attempt(signin.Key{Authenticator: id, User: d.actingUser(r), Secret: secret}, dev, func() error {
		return fn(ctx, id, dev)
	})
}

// device returns a present authenticator. When it is absent because its
// backend is down, the answer is backend_unavailable, not not_found.
func (d *Daemon) device(id string) (device.Device, error) {
	dev, err := d.manager.Device(id)
	if err == nil {
		return dev, nil
	}
	for _, b := range d.backends {
		p, ok := b.(device.IDPrefixer)
		if !ok || !strings.HasPrefix(id, p.IDPrefix()) {
			continue
		}
		if st := backendStatus(b); st.State != ipc.BackendUp {
			return nil, ipc.Errorf(ipc.CodeBackendUnavailable, "the %s backend is %s: %s", b.Name(), st.State, st.Detail)
		}
	}
	return nil, err
}

// writePINResult answers a PIN operation with the PIN state afterwards.
func (d *Daemon) writePINResult(ctx context.Context, w http.ResponseWriter, dev device.Device) error {
	st, err := dev.PINState(ctx)
	if err != nil {
		return err
	}
	return server.WriteJSON(w, http.StatusOK, ipc.PINResult{RetriesLeft: st.RetriesLeft, Blocked: st.Blocked, Verified: true})
}

// errorsJoin returns the first API error of errs (each names its field);
// the client gets one clear error envelope, not a joined text.
func errorsJoin(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// requireSecret refuses an empty PIN, PUK or new PIN.
func requireSecret(field string, s ipc.Secret) error {
	if s.Empty() {
		return ipc.Errorf(ipc.CodeBadRequest, "%s is required", field)
	}
	return nil
}
