package signin

import (
	"context"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/store"
)

// oidSmartcardLogon is Microsoft's smart card logon extended key usage.
var oidSmartcardLogon = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 2}

// Trust is the certificate policy of sign-in: trust anchors and revocation
// lists from the configuration. A nil *Trust accepts every certificate:
// registration alone binds a card to its user.
type Trust struct {
	roots *x509.CertPool
	crls  []*x509.RevocationList
}

// LoadTrust reads the configured trust anchors and CRLs; it returns nil when
// none are configured.
func LoadTrust(cfg config.SignIn) (*Trust, error) {
	if cfg.TrustAnchors == "" {
		return nil, nil
	}
	pemBytes, err := os.ReadFile(cfg.TrustAnchors)
	if err != nil {
		return nil, fmt.Errorf("signin.trust_anchors: %w", err)
	}
	t := &Trust{roots: x509.NewCertPool()}
	if !t.roots.AppendCertsFromPEM(pemBytes) {
		return nil, fmt.Errorf("signin.trust_anchors: %s holds no PEM certificate", cfg.TrustAnchors)
	}
	for _, f := range cfg.CRLFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("signin.crl_files: %w", err)
		}
		crl, err := x509.ParseRevocationList(certutil.PEMOrDER(b))
		if err != nil {
			return nil, fmt.Errorf("signin.crl_files: %s: %w", f, err)
		}
		t.crls = append(t.crls, crl)
	}
	return t, nil
}

// Check verifies a card certificate: validity dates, key usage, the chain to
// a trust anchor and revocation. It returns a *CertificateError when the
// certificate is refused.
func (t *Trust) Check(cert *x509.Certificate, now time.Time) error {
	if t == nil {
		return nil
	}
	invalid := func(format string, args ...any) error {
		return certificateErrorf("the card's certificate "+format+"; ask IT for a new certificate", args...)
	}
	switch {
	case now.Before(cert.NotBefore):
		return invalid("is not valid before %s", cert.NotBefore.UTC().Format(time.RFC3339))
	case now.After(cert.NotAfter):
		return invalid("expired on %s", cert.NotAfter.UTC().Format(time.RFC3339))
	case cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return invalid("does not allow digital signatures (key usage)")
	}
	if !signInEKU(cert) {
		return invalid("is not meant for signing in (extended key usage lacks client authentication and smart card logon)")
	}
	chains, err := cert.Verify(x509.VerifyOptions{Roots: t.roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return invalid("is not issued by a trusted authority (%v)", err)
	}
	for _, crl := range t.crls {
		for _, chain := range chains {
			if len(chain) < 2 || crl.CheckSignatureFrom(chain[1]) != nil {
				continue
			}
			for _, rc := range crl.RevokedCertificateEntries {
				if rc.SerialNumber.Cmp(cert.SerialNumber) == 0 {
					return invalid("was revoked on %s", rc.RevocationTime.UTC().Format(time.RFC3339))
				}
			}
		}
	}
	return nil
}

// signInEKU reports whether a certificate's extended key usage allows sign-in
// (absent, any, client authentication or smart card logon).
func signInEKU(cert *x509.Certificate) bool {
	if len(cert.ExtKeyUsage) == 0 && len(cert.UnknownExtKeyUsage) == 0 {
		return true
	}
	if slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) || slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return true
	}
	return slices.ContainsFunc(cert.UnknownExtKeyUsage, func(o asn1.ObjectIdentifier) bool { return o.Equal(oidSmartcardLogon) })
}

// certIdentities lists what a certificate says about who holds it, as the
// identity strings links use: "upn:…", "email:…", "cn:…", "subject:…".
func certIdentities(cert *x509.Certificate) []string {
	var ids []string
	upns, _ := certutil.UPNs(cert)
	for _, u := range upns {
		ids = append(ids, "upn:"+u)
	}
	for _, e := range cert.EmailAddresses {
		ids = append(ids, "email:"+e)
	}
	if cn := cert.Subject.CommonName; cn != "" {
		ids = append(ids, "cn:"+cn)
	}
	return append(ids, "subject:"+cert.Subject.String())
}

// Links looks up the account an identity is linked to (store.Store does).
type Links interface {
	LinkOf(ctx context.Context, identity string) (store.Link, error)
}

// UserIDs looks up an account's uid (the daemon's account database does).
type UserIDs interface {
	UserID(name string) (uint32, bool)
}

// mapIdentity checks that cert maps to user by one of the configured rules
// (R11). With no rules configured every certificate maps. A link counts only
// for the account it was made for (LinkIsFor). It returns a *MismatchError
// when the certificate maps to no rule.
func mapIdentity(ctx context.Context, links Links, accounts UserIDs, rules []string, cert *x509.Certificate, user string) error {
	if len(rules) == 0 {
		return nil
	}
	if cert == nil {
		return mismatchErrorf("the authenticator has no certificate to map to %s", user)
	}
	ids := certIdentities(cert)
	for _, rule := range rules {
		if rule == "link" {
			for _, id := range ids {
				if l, err := links.LinkOf(ctx, id); err == nil && LinkIsFor(l, accounts, user) {
					return nil
				} else if err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			continue
		}
		for _, id := range ids {
			kind, value, _ := strings.Cut(id, ":")
			if kind == rule && accountPart(value) == user {
				return nil
			}
		}
	}
	return mismatchErrorf("the card's certificate (%s) does not belong to %s; use your own card or ask IT to link its identity to your account", cert.Subject.CommonName, user)
}

// LinkIsFor reports whether link l belongs to the account user as it is
// now: same name and, when the link recorded one, same uid, so that an
// account deleted and created again under the same name does not inherit
// the links of the old one.
func LinkIsFor(l store.Link, accounts UserIDs, user string) bool {
	if l.User != user {
		return false
	}
	if l.UID == nil {
		return true
	}
	uid, ok := accounts.UserID(user)
	return ok && uid == *l.UID
}

// accountPart is the part of a UPN or e-mail address before the @.
func accountPart(s string) string {
	local, _, _ := strings.Cut(s, "@")
	return local
}
