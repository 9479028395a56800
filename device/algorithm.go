package device

import (
	"crypto"
	"crypto/rsa"
	"strings"
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
func SignAlgorithmNames() string {
	names := make([]string, len(SignAlgorithms))
	for i, a := range SignAlgorithms {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
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
