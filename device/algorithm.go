package device

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/hwerr"
)

// SignAlgorithm is a signing algorithm of the API (POST
// /v1/authenticators/{id}/sign): the daemon parses the API's name once, at
// its edge, and devices sign with its crypto values.
type SignAlgorithm string

// The signing algorithms the API accepts.
const (
	ECDSASHA256       SignAlgorithm = "ecdsa-sha256"
	ECDSASHA384       SignAlgorithm = "ecdsa-sha384"
	RSAPKCS1v15SHA256 SignAlgorithm = "rsa-pkcs1v15-sha256"
	RSAPSSSHA256      SignAlgorithm = "rsa-pss-sha256"
)

// SignAlgorithms lists the algorithms in the order the API documents them.
var SignAlgorithms = []SignAlgorithm{ECDSASHA256, ECDSASHA384, RSAPKCS1v15SHA256, RSAPSSSHA256}

// SignAlgorithmNames lists the names of SignAlgorithms, comma-separated, for
// help texts and refusals.
func SignAlgorithmNames() string { return names(SignAlgorithms) }

// names joins the names of a list of algorithms with commas.
func names[A ~string](list []A) string {
	out := make([]string, len(list))
	for i, a := range list {
		out[i] = string(a)
	}
	return strings.Join(out, ", ")
}

// ParseSignAlgorithm returns the algorithm the API calls name.
func ParseSignAlgorithm(name string) (SignAlgorithm, bool) {
	for _, a := range SignAlgorithms {
		if string(a) == name {
			return a, true
		}
	}
	return "", false
}

// Hash is the hash function whose digest the algorithm signs; 0 for an
// algorithm that is not one of SignAlgorithms.
func (a SignAlgorithm) Hash() crypto.Hash {
	switch a {
	case ECDSASHA256, RSAPKCS1v15SHA256, RSAPSSSHA256:
		return crypto.SHA256
	case ECDSASHA384:
		return crypto.SHA384
	}
	return 0
}

// RSA reports whether the algorithm signs with an RSA key.
func (a SignAlgorithm) RSA() bool { return a == RSAPKCS1v15SHA256 || a == RSAPSSSHA256 }

// SignerOpts returns the options for crypto.Signer.Sign: the hash, and for
// RSA-PSS a salt as long as the hash (what PIV, TPM and PKCS#11 devices
// make). It is nil for an algorithm that is not one of SignAlgorithms.
func (a SignAlgorithm) SignerOpts() crypto.SignerOpts {
	switch {
	case a == RSAPSSSHA256:
		return &rsa.PSSOptions{Hash: crypto.SHA256, SaltLength: rsa.PSSSaltLengthEqualsHash}
	case a.Hash() != 0:
		return a.Hash()
	}
	return nil
}

// Fits reports whether the algorithm signs with keys like pub: the ECDSA
// algorithms with ECDSA keys, the RSA ones with RSA keys.
func (a SignAlgorithm) Fits(pub crypto.PublicKey) bool {
	switch pub.(type) {
	case *ecdsa.PublicKey:
		return a.Hash() != 0 && !a.RSA()
	case *rsa.PublicKey:
		return a.RSA()
	}
	return false
}

// Verify checks sig, made with the algorithm over digest (ECDSA signatures
// in ASN.1 DER, as devices return them), with pub.
func (a SignAlgorithm) Verify(pub crypto.PublicKey, digest, sig []byte) error {
	if !a.Fits(pub) {
		return fmt.Errorf("%s does not sign with a %T", a, pub)
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if !ecdsa.VerifyASN1(k, digest, sig) {
			return errors.New("the ECDSA signature does not verify with the key")
		}
		return nil
	case *rsa.PublicKey:
		if a == RSAPSSSHA256 {
			// Any salt length: a TPM may salt with more than the hash's length.
			return rsa.VerifyPSS(k, a.Hash(), digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
		}
		return rsa.VerifyPKCS1v15(k, a.Hash(), digest, sig)
	}
	return nil
}

// SignAlgorithmFor picks the algorithm that proves possession of pub's
// private key on every device kind: ECDSA with SHA-384 for curves over 256
// bits, else SHA-256; RSA PKCS #1 v1.5 with SHA-256.
func SignAlgorithmFor(pub crypto.PublicKey) (SignAlgorithm, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve.Params().BitSize > 256 {
			return ECDSASHA384, nil
		}
		return ECDSASHA256, nil
	case *rsa.PublicKey:
		return RSAPKCS1v15SHA256, nil
	}
	return "", fmt.Errorf("key type %T: %w", pub, hwerr.ErrNotSupported)
}
