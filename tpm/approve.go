package tpm

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// approver is a one-use ECDSA P-256 key that approves one policy of one
// card (TPM2_PolicyAuthorize, TPM 2.0 Part 3 §23.16) and is then dropped:
// with its private half gone nobody can approve another policy for the
// card, so the approval stands for exactly "the old PIN may change the PIN".
type approver struct {
	key    *ecdsa.PrivateKey
	public tpm2.TPMTPublic
	name   []byte
}

func newApprover() (*approver, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("approval key: %w", err)
	}
	pub := tpm2.TPMTPublic{
		Type:             tpm2.TPMAlgECC,
		NameAlg:          tpm2.TPMAlgSHA256,
		ObjectAttributes: tpm2.TPMAObject{SignEncrypt: true, UserWithAuth: true},
		Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
			Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
			Scheme: tpm2.TPMTECCScheme{
				Scheme:  tpm2.TPMAlgECDSA,
				Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSigSchemeECDSA{HashAlg: tpm2.TPMAlgSHA256}),
			},
			CurveID: tpm2.TPMECCNistP256,
			KDF:     tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
		}),
		Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{
			X: tpm2.TPM2BECCParameter{Buffer: key.X.FillBytes(make([]byte, 32))},
			Y: tpm2.TPM2BECCParameter{Buffer: key.Y.FillBytes(make([]byte, 32))},
		}),
	}
	name, err := tpm2.ObjectName(&pub)
	if err != nil {
		return nil, fmt.Errorf("approval key name: %w", err)
	}
	return &approver{key: key, public: pub, name: name.Buffer}, nil
}

// approveLocked signs the policy "PolicySecret(PIN index) +
// TPM2_NV_ChangeAuth" with a and has the TPM check the signature
// (TPM2_LoadExternal in the owner hierarchy, TPM2_VerifySignature), which
// returns the TPMT_TK_VERIFIED ticket TPM2_PolicyAuthorize accepts. It
// returns the marshalled ticket and drops a's private key.
func (t *TPM) approveLocked(a *approver, pinName []byte) ([]byte, error) {
	defer func() { a.key = nil }()
	approved, err := approvedChangePolicy(pinName)
	if err != nil {
		return nil, err
	}
	aHash := sha256.Sum256(approved) // H(approvedPolicy || policyRef), policyRef empty
	r, s, err := ecdsa.Sign(rand.Reader, a.key, aHash[:])
	if err != nil {
		return nil, fmt.Errorf("approve PIN change policy: %w", err)
	}
	loaded, err := tpm2.LoadExternal{InPublic: tpm2.New2B(a.public), Hierarchy: tpm2.TPMRHOwner}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("load approval key: %w", classify(err))
	}
	defer t.flushLocked(loaded.ObjectHandle)
	rsp, err := tpm2.VerifySignature{
		KeyHandle: loaded.ObjectHandle,
		Digest:    tpm2.TPM2BDigest{Buffer: aHash[:]},
		Signature: tpm2.TPMTSignature{
			SigAlg: tpm2.TPMAlgECDSA,
			Signature: tpm2.NewTPMUSignature(tpm2.TPMAlgECDSA, &tpm2.TPMSSignatureECC{
				Hash:       tpm2.TPMAlgSHA256,
				SignatureR: tpm2.TPM2BECCParameter{Buffer: r.FillBytes(make([]byte, 32))},
				SignatureS: tpm2.TPM2BECCParameter{Buffer: s.FillBytes(make([]byte, 32))},
			}),
		},
	}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("verify PIN change approval: %w", classify(err))
	}
	return tpm2.Marshal(rsp.Validation), nil
}

// approvedBranchLocked runs branchApproved's assertions after the
// PolicySecret on the PIN index has been run in s: the command code, then
// TPM2_PolicyAuthorize with the card's approval ticket.
func (t *TPM) approvedBranchLocked(s tpm2.Session, c *Card) error {
	if _, err := (tpm2.PolicyCommandCode{PolicySession: s.Handle(), Code: tpm2.TPMCCNVChangeAuth}).Execute(t.tr); err != nil {
		return err
	}
	approved, err := approvedChangePolicy(c.PIN.Name)
	if err != nil {
		return err
	}
	ticket, err := tpm2.Unmarshal[tpm2.TPMTTKVerified](c.ApprovalTicket)
	if err != nil {
		return fmt.Errorf("card approval ticket: %w: %v", hwerr.ErrInvalidInput, err)
	}
	_, err = tpm2.PolicyAuthorize{
		PolicySession:  s.Handle(),
		ApprovedPolicy: tpm2.TPM2BDigest{Buffer: approved},
		KeySign:        tpm2.TPM2BName{Buffer: c.ApproverName},
		CheckTicket:    *ticket,
	}.Execute(t.tr)
	return err
}
