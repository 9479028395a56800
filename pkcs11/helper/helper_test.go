package helper

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"net"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pkcs11/wire"
)

// TestServeInProcess drives the helper over a net.Pipe against SoftHSM2:
// load, list (the free uninitialized slot is not a token), sign, and an
// unknown operation.
func TestServeInProcess(t *testing.T) {
	hsm := testenv.SoftHSM(t)
	hsm.InitToken("inproc", "1234", "5678")
	hsm.GenerateKey("inproc", "1234", "EC:prime256v1", "0a", "k")
	t.Setenv("SOFTHSM2_CONF", hsm.Conf())

	daemon, helperEnd := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- Serve(context.Background(), helperEnd) }()
	t.Cleanup(func() {
		daemon.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	call := func(req *wire.Request) *wire.Response {
		t.Helper()
		if err := wire.WriteRequest(daemon, req); err != nil {
			t.Fatal(err)
		}
		resp, err := wire.ReadResponse(daemon)
		if err != nil {
			t.Fatal(err)
		}
		if resp.ID != req.ID {
			t.Fatalf("answer to %d, want %d", resp.ID, req.ID)
		}
		return resp
	}
	load := call(&wire.Request{ID: 1, Op: wire.OpLoad, Modules: []string{hsm.Module()}})
	if len(load.Modules) != 1 || load.Modules[0].Error != "" {
		t.Fatalf("load = %+v, want SoftHSM2 loaded", load.Modules)
	}
	list := call(&wire.Request{ID: 2, Op: wire.OpList})
	if len(list.Tokens) != 1 || list.Tokens[0].Label != "inproc" || len(list.Tokens[0].Keys) != 1 {
		t.Fatalf("list = %+v", list.Tokens)
	}
	key := list.Tokens[0].Keys[0]
	digest := sha256.Sum256([]byte("x"))
	sign := call(&wire.Request{ID: 3, Op: wire.OpSign, Token: list.Tokens[0].Ref(), KeyID: key.ID,
		Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: []byte("1234")})
	if sign.Error != nil {
		t.Fatalf("sign: %+v", sign.Error)
	}
	pub, err := x509.ParsePKIXPublicKey(key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], sign.Signature) {
		t.Error("signature does not verify")
	}
	bad := call(&wire.Request{ID: 4, Op: "format-disk"})
	if bad.Error == nil || bad.Error.Class != "invalid_input" {
		t.Errorf("unknown op: %+v", bad.Error)
	}
}
