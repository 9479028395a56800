package main

import (
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/certutil"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/tpm/adminkey"
)

// vscCmd is `hwauthctl vsc create|list|show|delete|csr|import-cert|attest|verify-attestation|unblock`.
func vscCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vsc",
		Short: "Provision and manage TPM virtual smart cards on this device (admin)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return usageError{errors.New("vsc needs a subcommand: create, list, show, delete, csr, import-cert, attest, verify-attestation or unblock")}
		},
	}
	cmd.AddCommand(vscCreateCmd(a), vscListCmd(a), vscShowCmd(a), vscDeleteCmd(a), vscCSRCmd(a), vscImportCertCmd(a),
		vscAttestCmd(a), vscVerifyAttestationCmd(a), vscUnblockCmd(a))
	return cmd
}

// vscCreateCmd is `hwauthctl vsc create --label L [--algorithm A] [--attest]`.
func vscCreateCmd(a *app) *cobra.Command {
	var req ipc.VirtualSmartcardCreateRequest
	var adminKey string
	var noPUK bool
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a virtual smart card in this device's TPM (asks for its new PIN and PUK)",
		Long: "create makes a key in the TPM that never leaves it, protected by a PIN and a PUK.\n" +
			"On the terminal it asks for each twice; with --pin-stdin it reads the PIN, then the PUK,\n" +
			"one line each. Algorithms: " + device.VirtualCardAlgorithmNames() + " (the first is the default).",
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(device.VirtualCardAlgorithms, device.KeyAlgorithm(req.Algorithm)) {
				return usageError{fmt.Errorf("unknown algorithm %q; use one of %s", req.Algorithm, device.VirtualCardAlgorithmNames())}
			}
			if adminKey != "" {
				b, err := os.ReadFile(adminKey)
				if err != nil {
					return err
				}
				req.AdminKey = string(b)
			}
			return a.vscCreate(cmd, req, noPUK)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Label, "label", "", "name of the card (required)")
	fl.StringVar(&req.Algorithm, "algorithm", string(device.VirtualCardAlgorithms[0]), "key algorithm: "+device.VirtualCardAlgorithmNames())
	fl.BoolVar(&req.Attest, "attest", false, "also return a TPM2_Certify attestation of the new key")
	fl.StringVar(&adminKey, "admin-key", "", "PEM `file` of IT's admin public key (ECDSA P-256): its holder can unblock the card (vsc unblock)")
	fl.BoolVar(&noPUK, "no-puk", false, "create the card without PUK (when policy allows; unblock then needs the admin key or a new card)")
	_ = cmd.MarkFlagRequired("label")
	return cmd
}

// vscCreate asks for the PIN and PUK and creates the card.
func (a *app) vscCreate(cmd *cobra.Command, req ipc.VirtualSmartcardCreateRequest, noPUK bool) error {
	defer req.Wipe()
	var err error
	if req.PIN, err = a.secrets.readChosen("PIN"); err != nil {
		return err
	}
	if !noPUK {
		if req.PUK, err = a.secrets.readChosen("PUK"); err != nil {
			return err
		}
	}
	card, err := a.client().CreateVirtualSmartcard(cmd.Context(), req)
	if err != nil {
		return err
	}
	return a.output(card, func() error { return printVSC(a.stdout, card, false) })
}

// printVSC writes one virtual smart card for people, with its PEMs when
// pems is set.
func printVSC(w io.Writer, c *ipc.VirtualSmartcard, pems bool) error {
	tw := table(w)
	rows := [][2]string{{"ID", c.ID}, {"Label", c.Label}, {"Algorithm", c.Algorithm}, {"Device", c.Device},
		{"Created", when(c.CreatedAt)}, {"Certificate", yesNo(c.Certificate != "")}}
	if a := c.Attestation; a != nil {
		rows = append(rows,
			[2]string{"Attestation key", strings.TrimSpace(a.AKPublic)},
			[2]string{"Certify info", base64.StdEncoding.EncodeToString(a.CertifyInfo)},
			[2]string{"Signature", base64.StdEncoding.EncodeToString(a.Signature)})
	}
	for _, r := range rows {
		if r[1] != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", r[0], r[1])
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if pems {
		fmt.Fprintf(w, "\nPublic key:\n%s", c.PublicKey)
		if c.Certificate != "" {
			fmt.Fprintf(w, "Certificate:\n%s", c.Certificate)
		}
	}
	return nil
}

// vscListCmd is `hwauthctl vsc list`.
func vscListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the virtual smart cards of this device",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cards, err := a.client().VirtualSmartcards(cmd.Context())
			if err != nil {
				return err
			}
			return a.output(ipc.VirtualSmartcardsResponse{VirtualSmartcards: cards}, func() error {
				if len(cards) == 0 {
					_, err := fmt.Fprintln(a.stdout, "No virtual smart card on this device: create one with hwauthctl vsc create.")
					return err
				}
				tw := table(a.stdout)
				fmt.Fprintln(tw, "ID\tLABEL\tALGORITHM\tCERTIFICATE\tCREATED")
				for _, c := range cards {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Label, c.Algorithm, yesNo(c.Certificate != ""), when(c.CreatedAt))
				}
				return tw.Flush()
			})
		},
	}
}

// vscShowCmd is `hwauthctl vsc show ID`.
func vscShowCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show one virtual smart card with its public key and certificate",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			card, err := a.client().VirtualSmartcard(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.output(card, func() error { return printVSC(a.stdout, card, true) })
		},
	}
}

// vscDeleteCmd is `hwauthctl vsc delete [--yes] ID`.
func vscDeleteCmd(a *app) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a virtual smart card and its TPM key (asks first; cannot be undone)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := a.client()
			card, err := c.VirtualSmartcard(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			q := fmt.Sprintf("Delete virtual smart card %s (%s) and its TPM key? This cannot be undone.", card.Label, card.ID)
			if err := a.confirm(yes, "delete a virtual smart card", q); err != nil {
				return err
			}
			if err := c.DeleteVirtualSmartcard(cmd.Context(), card.ID); err != nil {
				return err
			}
			if a.json {
				return nil
			}
			_, err = fmt.Fprintf(a.stdout, "Deleted virtual smart card %s (%s).\n", card.Label, card.ID)
			return err
		},
	}
	yesFlag(cmd, &yes)
	return cmd
}

// vscCSRCmd is `hwauthctl vsc csr ID --subject DN [--out FILE]`.
func vscCSRCmd(a *app) *cobra.Command {
	var req ipc.CSRRequest
	var out string
	cmd := &cobra.Command{
		Use:   "csr ID",
		Short: "Make a certificate signing request signed in the TPM (asks for the card's PIN)",
		Long:  "csr prints a PEM certificate signing request for the card's key, or writes it to --out.",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if req.PIN, err = a.secrets.read("PIN"); err != nil {
				return err
			}
			defer req.Wipe()
			csr, err := a.client().VirtualSmartcardCSR(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.writePEM(ipc.CSRResponse{CSR: csr}, csr, out)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&req.Subject, "subject", "", `subject DN, e.g. "CN=Alice Smith,O=Example" (required)`)
	fl.StringVar(&req.UPN, "upn", "", "user principal name for the subject alternative name")
	fl.StringSliceVar(&req.Emails, "email", nil, "e-mail address for the subject alternative name (repeatable)")
	fl.StringSliceVar(&req.DNSNames, "dns", nil, "DNS name for the subject alternative name (repeatable)")
	fl.StringVar(&out, "out", "", "write the PEM to this file instead of printing it")
	_ = cmd.MarkFlagRequired("subject")
	return cmd
}

// writePEM prints text, or writes it to the file out; with --json it prints
// v either way.
func (a *app) writePEM(v any, text, out string) error {
	if out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			return err
		}
		if a.json {
			return a.printJSON(v)
		}
		return nil
	}
	return a.output(v, func() error {
		_, err := io.WriteString(a.stdout, text)
		return err
	})
}

// vscImportCertCmd is `hwauthctl vsc import-cert ID FILE`.
func vscImportCertCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "import-cert ID FILE",
		Short: "Import the certificate issued for a virtual smart card (PEM or DER file)",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			cert, err := certificatePEM(b)
			if err != nil {
				return fmt.Errorf("%s: %w", args[1], err)
			}
			card, err := a.client().ImportVirtualSmartcardCertificate(cmd.Context(), args[0], cert)
			if err != nil {
				return err
			}
			return a.output(card, func() error {
				_, err := fmt.Fprintf(a.stdout, "Imported the certificate into %s (%s).\n", card.Label, card.ID)
				return err
			})
		},
	}
}

// certificatePEM returns the first certificate of b as PEM: b is PEM (other
// blocks before it are skipped) or one DER certificate. It checks only the
// framing; the daemon checks that the certificate matches the key.
func certificatePEM(b []byte) (string, error) {
	if blocks := certutil.PEMBlocks(b, certutil.PEMCertificate); len(blocks) > 0 {
		return certutil.EncodePEM(certutil.PEMCertificate, blocks[0]), nil
	}
	if _, err := x509.ParseCertificate(b); err != nil {
		return "", errors.New("holds no certificate (neither a PEM CERTIFICATE block nor DER)")
	}
	return certutil.EncodePEM(certutil.PEMCertificate, b), nil
}

// vscUnblockCmd is `hwauthctl vsc unblock ID --admin-key KEY.pem`: the
// admin-key unblock, challenge and response in one go.
func vscUnblockCmd(a *app) *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "unblock ID --admin-key KEY.pem",
		Short: "Unblock a virtual smart card with IT's admin key (asks for the new PIN)",
		Long: "unblock asks the card for a challenge, signs it with the admin key's private half\n" +
			"(PEM, ECDSA P-256; it never leaves this program) and sets the new PIN. The TPM checks the\n" +
			"signature; hwauthd never holds the admin key.",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key, err := readAdminPrivateKey(keyFile)
			if err != nil {
				return err
			}
			newPIN, err := a.secrets.readNew("new PIN")
			if err != nil {
				return err
			}
			req := ipc.VSCUnblockRequest{NewPIN: newPIN}
			defer req.Wipe()
			c := a.client()
			ch, err := c.VirtualSmartcardAdminChallenge(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if len(ch.Challenges) != 2 {
				return fmt.Errorf("the card sent %d challenges, want 2", len(ch.Challenges))
			}
			sigs, err := adminkey.Sign(key, device.AdminChallenge{Challenges: [2][]byte{ch.Challenges[0], ch.Challenges[1]}})
			if err != nil {
				return err
			}
			req.Responses = sigs[:]
			card, err := c.UnblockVirtualSmartcard(cmd.Context(), args[0], req)
			if err != nil {
				return err
			}
			return a.output(card, func() error {
				_, err := fmt.Fprintf(a.stdout, "Unblocked %s (%s); its new PIN is set.\n", card.Label, card.ID)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "admin-key", "", "PEM `file` of the admin key's private half (required)")
	_ = cmd.MarkFlagRequired("admin-key")
	return cmd
}

// readAdminPrivateKey reads an ECDSA private key (PKCS #8 or SEC 1 PEM).
func readAdminPrivateKey(file string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	for _, der := range certutil.PEMBlocks(b, "") {
		if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
			if ec, ok := k.(*ecdsa.PrivateKey); ok {
				return ec, nil
			}
			return nil, fmt.Errorf("%s: the admin key must be ECDSA P-256, not %T", file, k)
		}
		if ec, err := x509.ParseECPrivateKey(der); err == nil {
			return ec, nil
		}
	}
	return nil, fmt.Errorf("%s: no PEM private key", file)
}
