package fido

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/fido/fidotest/vfido"
	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/internal/testenv"
)

// fido2Tool runs one of Debian's fido2-tools with the interposer preloaded
// and returns its standard output.
func fido2Tool(t *testing.T, preload, stdin string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+preload)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		err = errors.New(err.Error() + ": " + errb.String())
	}
	return out.String(), err
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// TestFido2ToolsCrossCheck uses Debian's fido2-token, fido2-cred and
// fido2-assert as independent clients of the same soft key: they see it,
// verify an assertion made through this backend, and register a credential
// that this backend then uses.
func TestFido2ToolsCrossCheck(t *testing.T) {
	testenv.RequireBinaries(t, "fido2-token", "fido2-cred", "fido2-assert")
	so := vfido.BuildPreload(t)
	d, k := openKey(t, Config{}, softkey.Options{AAGUID: [16]byte{0x5e, 0xc0}})
	ctx := ctxT(t)

	out, err := fido2Tool(t, so, "", "fido2-token", "-L")
	if err != nil || !strings.Contains(out, d.Path) {
		t.Fatalf("fido2-token -L: %q %v", out, err)
	}
	out, err = fido2Tool(t, so, "", "fido2-token", "-I", d.Path)
	if err != nil || !strings.Contains(out, "5ec00000000000000000000000000000") {
		t.Fatalf("fido2-token -I: %q %v", out, err)
	}

	for _, tc := range []struct {
		alg  int
		name string
	}{{ES256, "es256"}, {EdDSA, "eddsa"}} {
		t.Run(tc.name, func(t *testing.T) {
			// Made through hwauthd, verified by fido2-assert -V.
			cred, err := k.MakeCredential(ctx, testRP, []byte("uid"), "alice", hash("r"), tc.alg, nil, false)
			if err != nil {
				t.Fatal(err)
			}
			a, err := k.Assert(ctx, testRP, hash("a"), [][]byte{cred.ID}, nil, true)
			if err != nil {
				t.Fatal(err)
			}
			keyFile := filepath.Join(t.TempDir(), "pub.pem")
			os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: cred.PublicKeyDER}), 0o600)
			wrapped, _ := cbor.Marshal(a.AuthData)
			in := strings.Join([]string{b64(hash("a")), testRP, b64(wrapped), b64(a.Sig)}, "\n") + "\n"
			if _, err := fido2Tool(t, so, in, "fido2-assert", "-V", "-p", keyFile, tc.name); err != nil {
				t.Fatalf("fido2-assert -V rejects our assertion: %v", err)
			}
			bad := strings.Join([]string{b64(hash("other")), testRP, b64(wrapped), b64(a.Sig)}, "\n") + "\n"
			if _, err := fido2Tool(t, so, bad, "fido2-assert", "-V", "-p", keyFile, tc.name); err == nil {
				t.Fatal("fido2-assert -V accepts an assertion over other client data")
			}

			// Made by fido2-cred -M, used through hwauthd.
			in = strings.Join([]string{b64(hash("reg2")), testRP, "bob", b64([]byte("uid2"))}, "\n") + "\n"
			out, err := fido2Tool(t, so, in, "fido2-cred", "-M", d.Path, tc.name)
			if err != nil {
				t.Fatalf("fido2-cred -M: %v", err)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) < 6 || lines[2] != "packed" {
				t.Fatalf("fido2-cred output %q", out)
			}
			adCBOR, _ := base64.StdEncoding.DecodeString(lines[3])
			credID, _ := base64.StdEncoding.DecodeString(lines[4])
			sig, _ := base64.StdEncoding.DecodeString(lines[5])
			var ad []byte
			if err := cbor.Unmarshal(adCBOR, &ad); err != nil {
				t.Fatal(err)
			}
			parsed, err := webauthn.VerifyAttestation(&webauthn.Attestation{Format: lines[2], Alg: tc.alg, Sig: sig}, ad, hash("reg2"))
			if err != nil {
				t.Fatalf("attestation from fido2-cred: %v", err)
			}
			a, err = k.Assert(ctx, testRP, hash("b"), [][]byte{credID}, nil, true)
			if err != nil {
				t.Fatalf("assert with fido2-cred's credential: %v", err)
			}
			if _, err := webauthn.VerifyAssertion(parsed.PublicKey, testRP, hash("b"), a.AuthData, a.Sig, true, false, parsed.Counter); err != nil {
				t.Fatalf("verify: %v", err)
			}
		})
	}
}
