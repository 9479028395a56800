package daemon_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/ipc"
)

// TestSecurityKeyRoutes: a user sets the first PIN of a new security key
// (only once), registers it (a credential made with the PIN), makes a
// credential and gets an assertion that verifies with the credential's
// public key; malformed requests are bad_request before the key is asked, a
// wrong PIN is pin_incorrect with the tries left, another user is refused,
// and the FIDO routes on a smart card are not_supported.
func TestSecurityKeyRoutes(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	h.AddUser("bob")
	alice, bob, ctx := h.Client("alice"), h.Client("bob"), context.Background()
	const pin = "4321"
	key := h.InsertSecurityKey("alice's key", "")

	res, err := alice.SetPIN(ctx, key.ID(), []byte(pin))
	if err != nil || res.RetriesLeft != hwerr.TriesLeft(8) {
		t.Fatalf("set the first PIN: %+v %v", res, err)
	}
	if _, err := alice.SetPIN(ctx, key.ID(), []byte("9999")); !isCode(err, ipc.CodeNotSupported) {
		t.Fatalf("set the PIN again: %v", err)
	}
	reg, err := alice.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: key.ID(), PIN: ipc.Secret(pin)})
	if err != nil || reg.Kind != ipc.KindSecurityKey || reg.PublicKey == "" {
		t.Fatalf("register the key: %+v %v", reg, err)
	}

	cdh := sha256.Sum256([]byte("client data"))
	good := ipc.MakeCredentialRequest{RPID: "example.com", UserID: []byte("alice"), UserName: "alice", ClientDataHash: cdh[:], PIN: ipc.Secret(pin)}
	for _, tc := range []struct {
		name   string
		change func(*ipc.MakeCredentialRequest)
	}{
		{"a short client data hash", func(r *ipc.MakeCredentialRequest) { r.ClientDataHash = cdh[:16] }},
		{"no user id", func(r *ipc.MakeCredentialRequest) { r.UserID = nil }},
		{"a long user id", func(r *ipc.MakeCredentialRequest) { r.UserID = make([]byte, 65) }},
		{"no user name", func(r *ipc.MakeCredentialRequest) { r.UserName = "" }},
	} {
		req := good
		tc.change(&req)
		if _, err := alice.MakeCredential(ctx, key.ID(), req); !isCode(err, ipc.CodeBadRequest) {
			t.Errorf("make a credential with %s: %v", tc.name, err)
		}
	}
	wrong := good
	wrong.PIN = ipc.Secret("0000")
	var e *ipc.Error
	if _, err := alice.MakeCredential(ctx, key.ID(), wrong); !errors.As(err, &e) || e.Code != ipc.CodePINIncorrect || e.RetriesLeft != hwerr.TriesLeft(7) {
		t.Fatalf("make a credential with a wrong PIN: %v", err)
	}
	cred, err := alice.MakeCredential(ctx, key.ID(), good)
	if err != nil {
		t.Fatalf("make a credential: %v", err)
	}
	block, _ := pem.Decode([]byte(cred.PublicKey))
	if block == nil {
		t.Fatalf("credential public key: %q", cred.PublicKey)
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}

	ask := ipc.GetAssertionRequest{RPID: "example.com", ClientDataHash: cdh[:], CredentialIDs: [][]byte{cred.CredentialID}, PIN: ipc.Secret(pin)}
	bad := ask
	bad.CredentialIDs = [][]byte{cred.CredentialID, {}}
	if _, err := alice.GetAssertion(ctx, key.ID(), bad); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("an assertion with an empty credential id: %v", err)
	}
	bad = ask
	bad.ClientDataHash = nil
	if _, err := alice.GetAssertion(ctx, key.ID(), bad); !isCode(err, ipc.CodeBadRequest) {
		t.Errorf("an assertion without a client data hash: %v", err)
	}
	bad = ask
	bad.RPID = "other.example"
	if _, err := alice.GetAssertion(ctx, key.ID(), bad); !isCode(err, ipc.CodeNotFound) {
		t.Errorf("an assertion for another relying party: %v", err)
	}
	a, err := alice.GetAssertion(ctx, key.ID(), ask)
	if err != nil {
		t.Fatalf("assertion: %v", err)
	}
	digest := sha256.Sum256(append(append([]byte{}, a.AuthData...), cdh[:]...))
	if !ecdsa.VerifyASN1(pub.(*ecdsa.PublicKey), digest[:], a.Signature) {
		t.Error("the assertion does not verify with the credential's public key")
	}

	if _, err := bob.MakeCredential(ctx, key.ID(), good); !isCode(err, ipc.CodeUnauthorized) {
		t.Errorf("bob uses alice's key: %v", err)
	}
	card := h.Insert(daemontest.CardOptions{Label: "alice's card"})
	if _, err := alice.Register(ctx, "alice", ipc.RegisterRequest{Authenticator: card.ID(), PIN: ipc.Secret(daemontest.PIN)}); err != nil {
		t.Fatal(err)
	}
	if _, err := alice.GetAssertion(ctx, card.ID(), ask); !isCode(err, ipc.CodeNotSupported) {
		t.Errorf("an assertion from a smart card: %v", err)
	}
	if _, err := alice.SetPIN(ctx, card.ID(), []byte(pin)); !isCode(err, ipc.CodeNotSupported) {
		t.Errorf("set the PIN of a smart card: %v", err)
	}
	if card.PINsSeen() != 1 {
		t.Errorf("the smart card saw %d PINs, want only the registration's", card.PINsSeen())
	}
}
