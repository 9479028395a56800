package tpm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/hwerr"
)

// CSR verifies pin (counted as in VerifyPIN) and returns a PKCS #10
// certificate request (DER) for the card's key with subject, signed in the
// TPM. Each of sans that contains "@" becomes an e-mail address, the others
// DNS names. It zeroes pin.
func (t *TPM) CSR(ctx context.Context, card *Card, pin []byte, subject pkix.Name, sans ...string) ([]byte, error) {
	signer, release, err := t.Signer(ctx, card, pin)
	if err != nil {
		return nil, err
	}
	defer release()
	tmpl := &x509.CertificateRequest{Subject: subject}
	for _, san := range sans {
		if strings.Contains(san, "@") {
			tmpl.EmailAddresses = append(tmpl.EmailAddresses, san)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, san)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, signer)
	if err != nil {
		return nil, fmt.Errorf("create certificate request: %w", err)
	}
	return der, nil
}

// ImportCertificate stores the certificate der (X.509, DER) in card after
// checking that it certifies the card's key: otherwise hwerr.ErrInvalidInput
// "certificate public key does not match the card". The daemon saves the
// card afterwards.
func ImportCertificate(card *Card, der []byte) error {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return fmt.Errorf("parse certificate: %w: %v", hwerr.ErrInvalidInput, err)
	}
	pub, err := x509.ParsePKIXPublicKey(card.PublicKey)
	if err != nil {
		return fmt.Errorf("card public key: %w: %v", hwerr.ErrInvalidInput, err)
	}
	eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !eq.Equal(cert.PublicKey) {
		return fmt.Errorf("certificate public key does not match the card: %w", hwerr.ErrInvalidInput)
	}
	card.Certificate = append([]byte(nil), der...)
	return nil
}
