package main

import (
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/tpm/attest"
)

// vscAttestCmd is `hwauthctl vsc attest ID [--challenge FILE] [--out FILE]`,
// the device's side of the attestation exchange.
func vscAttestCmd(a *app) *cobra.Command {
	var challenge, out string
	cmd := &cobra.Command{
		Use:   "attest ID",
		Short: "Prove to IT that a virtual smart card's key lives in this device's TPM (two steps)",
		Long: "attest writes an attestation request for the card (the TPM's endorsement key certificate,\n" +
			"an attestation key and its certification of the card's key) for the verifier\n" +
			"(hwauthctl vsc verify-attestation). With --challenge FILE it opens the verifier's challenge\n" +
			"in the TPM and writes the answer for the verifier.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			if challenge == "" {
				req, err := c.VirtualSmartcardAttestation(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return writeJSONFile(a, req, out)
			}
			var ch ipc.VSCAttestationChallenge
			if err := readJSONFile(challenge, &ch); err != nil {
				return err
			}
			answer, err := c.ActivateVirtualSmartcardAttestation(cmd.Context(), args[0], ch)
			if err != nil {
				return err
			}
			return writeJSONFile(a, answer, out)
		},
	}
	cmd.Flags().StringVar(&challenge, "challenge", "", "the verifier's challenge `file`: answer it")
	cmd.Flags().StringVar(&out, "out", "", "write to this `file` instead of standard output")
	return cmd
}

// verifierState is what the verifier keeps between its two steps: the
// challenge's secret and the key it will vouch for.
type verifierState struct {
	Secret  []byte `json:"secret"`
	CardKey string `json:"card_key"`
}

// vscVerifyAttestationCmd is `hwauthctl vsc verify-attestation --ek-ca CA.pem
// --state FILE REQUEST|ANSWER`, the verifier's side; it needs no daemon.
func vscVerifyAttestationCmd(a *app) *cobra.Command {
	var caFile, stateFile, out string
	cmd := &cobra.Command{
		Use:   "verify-attestation --state FILE [--ek-ca CA.pem] FILE",
		Short: "Verify a virtual smart card's attestation (IT's side; no daemon needed)",
		Long: "Step 1, with --ek-ca: FILE is the device's request (hwauthctl vsc attest ID); the endorsement key\n" +
			"certificate must chain to the TPM maker's CA in CA.pem. It writes a challenge for the device\n" +
			"and keeps its secret in the --state file. Step 2, without --ek-ca: FILE is the device's answer\n" +
			"(hwauthctl vsc attest ID --challenge); it checks it against the --state file and prints the\n" +
			"card's public key, now known to live in that TPM.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if caFile != "" {
				return a.verifyAttestationRequest(caFile, stateFile, args[0], out)
			}
			return a.verifyAttestationAnswer(stateFile, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&caFile, "ek-ca", "", "PEM `file` of the TPM maker's CA certificates (step 1)")
	fl.StringVar(&stateFile, "state", "", "`file` where the verifier keeps its secret between the steps (required)")
	fl.StringVar(&out, "out", "", "write the challenge to this `file` instead of standard output")
	_ = cmd.MarkFlagRequired("state")
	return cmd
}

func (a *app) verifyAttestationRequest(caFile, stateFile, reqFile, out string) error {
	cas, err := readCertificates(caFile)
	if err != nil {
		return err
	}
	var req ipc.VSCAttestationRequest
	if err := readJSONFile(reqFile, &req); err != nil {
		return err
	}
	key, ch, secret, err := attest.VerifyRequest((*device.AttestationRequest)(&req), cas)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return err
	}
	st, err := json.Marshal(verifierState{Secret: secret,
		CardKey: certutil.EncodePEM(certutil.PEMPublicKey, der)})
	if err != nil {
		return err
	}
	if err := os.WriteFile(stateFile, st, 0o600); err != nil {
		return err
	}
	return writeJSONFile(a, ipc.VSCAttestationChallenge(*ch), out)
}

func (a *app) verifyAttestationAnswer(stateFile, answerFile string) error {
	var st verifierState
	if err := readJSONFile(stateFile, &st); err != nil {
		return err
	}
	var answer ipc.VSCAttestationAnswer
	if err := readJSONFile(answerFile, &answer); err != nil {
		return err
	}
	if err := attest.CheckAnswer(st.Secret, answer.Answer); err != nil {
		return err
	}
	_ = os.Remove(stateFile) // one answer per challenge
	return a.output(map[string]string{"verified": "true", "card_key": st.CardKey}, func() error {
		_, err := fmt.Fprintf(a.stdout, "Verified: this key lives in a TPM the EK CA vouches for:\n%s", st.CardKey)
		return err
	})
}

// readCertificates reads every PEM certificate in file.
func readCertificates(file string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, der := range certutil.PEMBlocks(b, certutil.PEMCertificate) {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", file, errors.New("holds no PEM certificate"))
	}
	return out, nil
}

func readJSONFile(file string, v any) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	return nil
}

// writeJSONFile writes v as JSON to the file out, or prints it.
func writeJSONFile(a *app, v any, out string) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if out != "" {
		return os.WriteFile(out, b, 0o644)
	}
	_, err = a.stdout.Write(b)
	return err
}
