package main

import (
	"crypto"
	_ "crypto/sha256" // SHA-256 for --file
	_ "crypto/sha512" // SHA-384 for --file
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// signFlags are the flags of `hwauthctl sign`.
type signFlags struct {
	key, algorithm             string
	digestB64, digestHex, file string
	out                        string
	noPIN                      bool
}

// signCmd is `hwauthctl sign ID`.
func signCmd(a *app) *cobra.Command {
	var f signFlags
	cmd := &cobra.Command{
		Use:   "sign ID",
		Short: "Sign a digest with a key of the authenticator (asks for the PIN)",
		Long: "sign signs a digest given in base64 (--digest), in hex (--digest-hex), or the hash of a\n" +
			"file (--file), and prints the signature in base64 or writes it raw to --out.\n" +
			"Algorithms: " + device.SignAlgorithmNames() + ".",
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return a.sign(cmd, args[0], &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.key, "key", "9a", "key id: PIV slot (9a, 9c, 9d, 9e) or PKCS#11 id in hex")
	fl.StringVar(&f.algorithm, "algorithm", string(device.ECDSASHA256), "signature algorithm")
	fl.StringVar(&f.digestB64, "digest", "", "digest to sign, base64")
	fl.StringVar(&f.digestHex, "digest-hex", "", "digest to sign, hex")
	fl.StringVar(&f.file, "file", "", "file whose hash to sign")
	fl.StringVar(&f.out, "out", "", "write the raw signature to this file instead of printing base64")
	fl.BoolVar(&f.noPIN, "no-pin", false, "sign without a PIN: for keys that need none (9e), or within a session when signin.cache_pin is on")
	cmd.MarkFlagsMutuallyExclusive("digest", "digest-hex", "file")
	cmd.MarkFlagsOneRequired("digest", "digest-hex", "file")
	return cmd
}

// sign runs `hwauthctl sign`.
func (a *app) sign(cmd *cobra.Command, id string, f *signFlags) error {
	alg, ok := device.ParseSignAlgorithm(f.algorithm)
	if !ok {
		return usageError{fmt.Errorf("unknown algorithm %q; one of %s", f.algorithm, device.SignAlgorithmNames())}
	}
	digest, err := f.digest(alg.Hash())
	if err != nil {
		return err
	}
	req := ipc.SignRequest{Key: f.key, Algorithm: f.algorithm, Digest: digest}
	if !f.noPIN {
		if req.PIN, err = a.secrets.read("PIN"); err != nil {
			return err
		}
		defer req.Wipe()
	}
	sig, err := a.client().Sign(cmd.Context(), id, req)
	if err != nil {
		return err
	}
	return a.writeSignature(sig, f)
}

// digest returns the digest named by the flags, checking its length.
func (f *signFlags) digest(h crypto.Hash) ([]byte, error) {
	var d []byte
	var err error
	switch {
	case f.digestB64 != "":
		d, err = base64.StdEncoding.DecodeString(f.digestB64)
	case f.digestHex != "":
		d, err = hex.DecodeString(f.digestHex)
	default:
		d, err = hashFile(f.file, h)
		if err != nil {
			return nil, err
		}
	}
	if err != nil {
		return nil, usageError{fmt.Errorf("digest: %w", err)}
	}
	if len(d) != h.Size() {
		return nil, usageError{fmt.Errorf("digest is %d bytes; %s needs %d", len(d), f.algorithm, h.Size())}
	}
	return d, nil
}

// hashFile hashes a file with h.
func hashFile(path string, h crypto.Hash) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	hh := h.New()
	if _, err := io.Copy(hh, fh); err != nil {
		return nil, fmt.Errorf("hash %s: %w", path, err)
	}
	return hh.Sum(nil), nil
}

// writeSignature prints the signature, or writes it to the --out file and
// says so.
func (a *app) writeSignature(sig []byte, f *signFlags) error {
	if out := f.out; out != "" {
		if err := os.WriteFile(out, sig, 0o644); err != nil {
			return err
		}
		return a.output(ipc.SignResponse{Signature: sig}, func() error {
			_, err := fmt.Fprintf(a.stdout, "Wrote the signature (%d bytes, %s with key %s) to %s.\n", len(sig), f.algorithm, f.key, out)
			return err
		})
	}
	return a.output(ipc.SignResponse{Signature: sig}, func() error {
		_, err := fmt.Fprintln(a.stdout, base64.StdEncoding.EncodeToString(sig))
		return err
	})
}
