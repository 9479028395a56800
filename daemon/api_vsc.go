package daemon

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"net/http"
	"slices"

	"github.com/hwauthd/hwauthd/daemon/signin"
	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// virtualCards returns the TPM backend, or backend_unavailable.
func (d *Daemon) virtualCards() (device.VirtualCards, error) {
	if d.vsc == nil {
		return nil, ipc.Errorf(ipc.CodeBackendUnavailable, "virtual smart cards are off (tpm.enabled = false)")
	}
	return d.vsc, nil
}

func (d *Daemon) postVirtualCard(w http.ResponseWriter, r *http.Request) error {
	var req ipc.VirtualSmartcardCreateRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	switch {
	case req.Label == "":
		return ipc.Errorf(ipc.CodeBadRequest, "label is required")
	case validName("label", req.Label) != nil:
		return validName("label", req.Label)
	case req.Algorithm != "" && !slices.Contains(device.VirtualCardAlgorithms, device.KeyAlgorithm(req.Algorithm)):
		return ipc.Errorf(ipc.CodeBadRequest, "algorithm must be one of %s, got %q", device.VirtualCardAlgorithmNames(), req.Algorithm)
	case len(req.Nonce) > 64:
		return ipc.Errorf(ipc.CodeBadRequest, "nonce must be at most 64 bytes")
	}
	if err := signin.CheckKind(d.cfg.Policy, ipc.KindVirtualSmartcard); err != nil {
		return err
	}
	// The PUK is optional unless tpm.require_puk says otherwise; the
	// backend applies the PIN policy.
	if err := requireSecret("pin", req.PIN); err != nil {
		return err
	}
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		adminKey, err := parseAdminKey(req.AdminKey)
		if err != nil {
			return err
		}
		card, err := v.Create(ctx, device.CreateVirtualCard{Label: req.Label, PIN: req.PIN, PUK: req.PUK,
			Algorithm: device.KeyAlgorithm(req.Algorithm), Attest: req.Attest, Nonce: req.Nonce, AdminKey: adminKey})
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusCreated, virtualCardToAPI(card))
	})
}

func (d *Daemon) getVirtualCards(w http.ResponseWriter, r *http.Request) error {
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		cards, err := v.List(ctx)
		if err != nil {
			return err
		}
		out := make([]ipc.VirtualSmartcard, 0, len(cards))
		for _, c := range cards {
			out = append(out, virtualCardToAPI(c))
		}
		return server.WriteJSON(w, http.StatusOK, ipc.VirtualSmartcardsResponse{VirtualSmartcards: out})
	})
}

func (d *Daemon) getVirtualCard(w http.ResponseWriter, r *http.Request) error {
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		card, err := v.Get(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, virtualCardToAPI(card))
	})
}

// deleteVirtualCard destroys a card and its TPM key; it cannot be undone.
func (d *Daemon) deleteVirtualCard(w http.ResponseWriter, r *http.Request) error {
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		if err := v.Delete(ctx, r.PathValue("id")); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	})
}

func (d *Daemon) postVirtualCardCSR(w http.ResponseWriter, r *http.Request) error {
	var req ipc.CSRRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Subject == "" {
		return ipc.Errorf(ipc.CodeBadRequest, "subject is required (e.g. \"CN=Alice Example,O=Example\")")
	}
	csrReq := device.CSRRequest{Subject: req.Subject, DNSNames: req.DNSNames, Emails: req.Emails, UPN: req.UPN, PIN: req.PIN}
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		csr, err := v.CSR(ctx, r.PathValue("id"), csrReq)
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, ipc.CSRResponse{CSR: certutil.EncodePEM(certutil.PEMCSR, csr)})
	})
}

func (d *Daemon) putVirtualCardCertificate(w http.ResponseWriter, r *http.Request) error {
	var req ipc.CertificateImport
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	if req.Certificate == "" {
		return ipc.Errorf(ipc.CodeBadRequest, "certificate is required (PEM)")
	}
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		id := r.PathValue("id")
		if _, err := v.Get(ctx, id); err != nil {
			return err
		}
		cert, err := parseCertificate(req.Certificate)
		if err != nil {
			return err
		}
		card, err := v.ImportCertificate(ctx, id, cert)
		if errors.Is(err, hwerr.ErrInvalidInput) {
			return ipc.Errorf(ipc.CodeCertificateInvalid, "%v", err)
		}
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, virtualCardToAPI(card))
	})
}

// withVirtualCards runs fn with the TPM backend, bounded by the request
// timeout.
func (d *Daemon) withVirtualCards(r *http.Request, fn func(context.Context, device.VirtualCards) error) error {
	v, err := d.virtualCards()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(r.Context(), d.cfg.API.RequestTimeout.Duration)
	defer cancel()
	return fn(ctx, v)
}

// postVirtualCardAttestation starts the endorsement-key attestation
// exchange: what the device tells the verifier.
func (d *Daemon) postVirtualCardAttestation(w http.ResponseWriter, r *http.Request) error {
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		req, err := v.AttestationRequest(ctx, r.PathValue("id"))
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, ipc.VSCAttestationRequest(req))
	})
}

// postVirtualCardAttestationActivate opens the verifier's challenge in the
// TPM and answers with the secret it held.
func (d *Daemon) postVirtualCardAttestationActivate(w http.ResponseWriter, r *http.Request) error {
	var ch ipc.VSCAttestationChallenge
	if err := server.DecodeJSON(r, &ch); err != nil {
		return err
	}
	if len(ch.CredentialBlob) == 0 || len(ch.EncryptedSecret) == 0 {
		return ipc.Errorf(ipc.CodeBadRequest, "credential_blob and encrypted_secret are required (the verifier's challenge)")
	}
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		answer, err := v.ActivateAttestation(ctx, r.PathValue("id"), device.AttestationChallenge(ch))
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, ipc.VSCAttestationAnswer{Answer: answer})
	})
}

// postVirtualCardUnblock is the admin-key unblock: without responses it
// answers the card's challenge; with the admin key's responses and a new
// PIN it unblocks the card and answers it.
func (d *Daemon) postVirtualCardUnblock(w http.ResponseWriter, r *http.Request) error {
	var req ipc.VSCUnblockRequest
	defer req.Wipe()
	if err := server.DecodeJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	return d.withVirtualCards(r, func(ctx context.Context, v device.VirtualCards) error {
		if len(req.Responses) == 0 {
			ch, err := v.AdminChallenge(ctx, id)
			if err != nil {
				return err
			}
			return server.WriteJSON(w, http.StatusOK, ipc.VSCUnblockChallenge{Challenges: ch.Challenges[:], ExpiresAt: ch.Expires})
		}
		if err := requireSecret("new_pin", req.NewPIN); err != nil {
			return err
		}
		if len(req.Responses) != 2 {
			return ipc.Errorf(ipc.CodeBadRequest, "responses must hold the two signed challenges")
		}
		if err := v.AdminUnblock(ctx, id, [2][]byte(req.Responses), req.NewPIN); err != nil {
			return err
		}
		card, err := v.Get(ctx, id)
		if err != nil {
			return err
		}
		return server.WriteJSON(w, http.StatusOK, virtualCardToAPI(card))
	})
}

// parseAdminKey reads an admin key given as a PEM public key (none when
// empty).
func parseAdminKey(p string) (*ecdsa.PublicKey, error) {
	if p == "" {
		return nil, nil
	}
	blocks := certutil.PEMBlocks([]byte(p), "")
	if len(blocks) == 0 {
		return nil, ipc.Errorf(ipc.CodeBadRequest, "admin_key must be a PEM public key")
	}
	pub, err := x509.ParsePKIXPublicKey(blocks[0])
	if err != nil {
		return nil, ipc.Errorf(ipc.CodeBadRequest, "admin_key: %v", err)
	}
	key, ok := pub.(*ecdsa.PublicKey)
	if !ok {
		return nil, ipc.Errorf(ipc.CodeBadRequest, "admin_key must be an ECDSA P-256 key, got %T", pub)
	}
	return key, nil
}

// parseCertificate reads a certificate given in PEM (or DER).
func parseCertificate(p string) (*x509.Certificate, error) {
	cert, err := x509.ParseCertificate(certutil.PEMOrDER([]byte(p)))
	if err != nil {
		return nil, ipc.Errorf(ipc.CodeCertificateInvalid, "the certificate does not parse: %v", err)
	}
	return cert, nil
}
