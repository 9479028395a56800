package tpm

import (
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Algorithm names of virtual card keys, as in the API.
const (
	AlgECCP256 = "ecc-p256"
	AlgECCP384 = "ecc-p384"
	AlgRSA2048 = "rsa-2048"
)

// signingKeyTemplate is the public template of a card's signing key for
// alg: an unrestricted signing key generated in the TPM
// (sensitiveDataOrigin) that never leaves this TPM (fixedTPM) nor its
// parent (fixedParent), with no fixed scheme, so that TPM2_Sign chooses
// ECDSA, RSASSA or RSAPSS and the hash per call. userWithAuth is clear:
// its only user authorization is policy, the PIN index's PolicySecret
// (TPM 2.0 Part 2 §8.3). Its authValue stays empty.
func signingKeyTemplate(alg string, policy []byte) (tpm2.TPMTPublic, error) {
	attrs := tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		SignEncrypt:         true,
	}
	pub := tpm2.TPMTPublic{NameAlg: tpm2.TPMAlgSHA256, ObjectAttributes: attrs, AuthPolicy: tpm2.TPM2BDigest{Buffer: policy}}
	switch alg {
	case AlgECCP256, AlgECCP384:
		curve := tpm2.TPMECCNistP256
		if alg == AlgECCP384 {
			curve = tpm2.TPMECCNistP384
		}
		pub.Type = tpm2.TPMAlgECC
		pub.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
			CurveID:   curve,
			KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		})
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{})
	case AlgRSA2048:
		pub.Type = tpm2.TPMAlgRSA
		pub.Parameters = tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme:    tpm2.TPMTRSAScheme{Scheme: tpm2.TPMAlgNull},
			KeyBits:   2048,
		})
		pub.Unique = tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{})
	default:
		return tpm2.TPMTPublic{}, fmt.Errorf("algorithm %q (want %s, %s or %s): %w",
			alg, AlgECCP256, AlgECCP384, AlgRSA2048, hwerr.ErrNotSupported)
	}
	return pub, nil
}

// attestationKeyTemplate is the attestation key: a restricted ECDSA P-256
// SHA-256 signing primary in the endorsement hierarchy. Being a primary
// with a fixed template it is the same key every time on one TPM.
func attestationKeyTemplate() tpm2.TPMTPublic {
	attrs := tpm2.TPMAObject{
		FixedTPM:            true,
		FixedParent:         true,
		SensitiveDataOrigin: true,
		UserWithAuth:        true,
		SignEncrypt:         true,
		Restricted:          true,
		NoDA:                true,
	}
	return tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: attrs,
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme: tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA,
					&tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
			Y: tpm2.TPM2BECCParameter{Buffer: make([]byte, 32)},
		}),
	}
}
