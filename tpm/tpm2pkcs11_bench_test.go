//go:build cgo

package tpm

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/pkcs11/p11crypto"
	"github.com/miekg/pkcs11"
)

// tpm2PKCS11Token is a session on tpm2-pkcs11's token (the peer that issue
// #3 compares hwauthd's virtual cards with), loaded through miekg/pkcs11 on
// a private swtpm, with the handle and public key of its ECC P-256 key.
type tpm2PKCS11Token struct {
	ctx     *pkcs11.Ctx
	session pkcs11.SessionHandle
	key     pkcs11.ObjectHandle
	pub     *ecdsa.PublicKey
}

// openTPM2PKCS11 provisions tpm2-pkcs11 on a fresh swtpm, loads the module
// in this process, opens a session on the token and finds its key pair. The
// session is left logged out.
func openTPM2PKCS11(t testing.TB) *tpm2PKCS11Token {
	t.Helper()
	module, _, env := testenv.TPM2PKCS11(t, testenv.SWTPM(t), testPIN)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	ctx := pkcs11.New(module)
	if ctx == nil {
		t.Fatalf("cannot load %s", module)
	}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		t.Fatalf("C_Initialize: %v", err)
	}
	t.Cleanup(func() { ctx.Finalize(); ctx.Destroy() })
	tok := &tpm2PKCS11Token{ctx: ctx}
	var err error
	if tok.session, err = ctx.OpenSession(tokenSlot(t, ctx), pkcs11.CKF_SERIAL_SESSION); err != nil {
		t.Fatalf("C_OpenSession: %v", err)
	}
	t.Cleanup(func() { ctx.CloseSession(tok.session) })
	tok.login(t)
	tok.key = tok.findObject(t, pkcs11.CKO_PRIVATE_KEY)
	tok.pub = tok.publicKey(t, tok.findObject(t, pkcs11.CKO_PUBLIC_KEY))
	tok.logout(t)
	return tok
}

// tokenSlot returns the slot holding testenv.TPM2PKCS11Token.
func tokenSlot(t testing.TB, ctx *pkcs11.Ctx) uint {
	t.Helper()
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		t.Fatalf("C_GetSlotList: %v", err)
	}
	for _, s := range slots {
		ti, err := ctx.GetTokenInfo(s)
		if err == nil && strings.TrimRight(ti.Label, " \x00") == testenv.TPM2PKCS11Token {
			return s
		}
	}
	t.Fatalf("no token labelled %q in %d slots", testenv.TPM2PKCS11Token, len(slots))
	return 0
}

// findObject returns the one object of class labelled testenv.TPM2PKCS11Key.
func (tok *tpm2PKCS11Token) findObject(t testing.TB, class uint) pkcs11.ObjectHandle {
	t.Helper()
	tmpl := []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, testenv.TPM2PKCS11Key),
	}
	if err := tok.ctx.FindObjectsInit(tok.session, tmpl); err != nil {
		t.Fatalf("C_FindObjectsInit: %v", err)
	}
	objs, _, err := tok.ctx.FindObjects(tok.session, 2)
	if ferr := tok.ctx.FindObjectsFinal(tok.session); err == nil {
		err = ferr
	}
	if err != nil {
		t.Fatalf("C_FindObjects: %v", err)
	}
	if len(objs) != 1 {
		t.Fatalf("found %d objects of class %d labelled %q, want 1", len(objs), class, testenv.TPM2PKCS11Key)
	}
	return objs[0]
}

// publicKey reads CKA_EC_PARAMS and CKA_EC_POINT of the public key object.
func (tok *tpm2PKCS11Token) publicKey(t testing.TB, obj pkcs11.ObjectHandle) *ecdsa.PublicKey {
	t.Helper()
	attrs, err := tok.ctx.GetAttributeValue(tok.session, obj, []*pkcs11.Attribute{
		pkcs11.NewAttribute(pkcs11.CKA_EC_PARAMS, nil),
		pkcs11.NewAttribute(pkcs11.CKA_EC_POINT, nil),
	})
	if err != nil {
		t.Fatalf("C_GetAttributeValue: %v", err)
	}
	pub, err := p11crypto.ECPublicKey(attrs[0].Value, attrs[1].Value)
	if err != nil {
		t.Fatalf("public key: %v", err)
	}
	return pub
}

func (tok *tpm2PKCS11Token) login(t testing.TB) {
	t.Helper()
	if err := tok.ctx.Login(tok.session, pkcs11.CKU_USER, testPIN); err != nil {
		t.Fatalf("C_Login: %v", err)
	}
}

func (tok *tpm2PKCS11Token) logout(t testing.TB) {
	t.Helper()
	if err := tok.ctx.Logout(tok.session); err != nil {
		t.Fatalf("C_Logout: %v", err)
	}
}

// sign signs a SHA-256 digest with CKM_ECDSA (PKCS#11 v2.40 §2.3.6) and
// returns the raw r||s signature.
func (tok *tpm2PKCS11Token) sign(t testing.TB, digest []byte) []byte {
	t.Helper()
	mech := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_ECDSA, nil)}
	if err := tok.ctx.SignInit(tok.session, mech, tok.key); err != nil {
		t.Fatalf("C_SignInit: %v", err)
	}
	sig, err := tok.ctx.Sign(tok.session, digest)
	if err != nil {
		t.Fatalf("C_Sign: %v", err)
	}
	return sig
}

// TestSignTPM2PKCS11 proves the comparison's setup: tpm2-pkcs11 on a
// private swtpm signs, and the signature verifies with the token's public
// key for the signed digest and for no other.
func TestSignTPM2PKCS11(t *testing.T) {
	tok := openTPM2PKCS11(t)
	tok.login(t)
	defer tok.logout(t)
	digest := sha256.Sum256([]byte(time.Now().String()))
	sig, err := p11crypto.ECDSASignatureDER(tok.sign(t, digest[:]))
	if err != nil {
		t.Fatal(err)
	}
	if !ecdsa.VerifyASN1(tok.pub, digest[:], sig) {
		t.Fatal("tpm2-pkcs11 signature does not verify with the token's public key")
	}
	other := sha256.Sum256([]byte("another message"))
	if ecdsa.VerifyASN1(tok.pub, other[:], sig) {
		t.Fatal("signature verifies for a digest that was not signed")
	}
}

// BenchmarkSignTPM2PKCS11 is one ECDSA P-256 signature of a SHA-256 digest
// through tpm2-pkcs11 (C_SignInit, C_Sign) on the same kind of swtpm as
// BenchmarkSignDirect, in a session logged in once.
func BenchmarkSignTPM2PKCS11(b *testing.B) {
	tok := openTPM2PKCS11(b)
	tok.login(b)
	defer tok.logout(b)
	digest := sha256.Sum256([]byte("bench"))
	for b.Loop() {
		tok.sign(b, digest[:])
	}
}

// BenchmarkSignTPM2PKCS11Login is C_Login, C_SignInit, C_Sign and C_Logout
// through tpm2-pkcs11 per signature: the PIN is checked for every signature,
// as hwauthd's virtual cards do (compare with BenchmarkSignEngine and
// e2e's BenchmarkVSCSignDaemon).
func BenchmarkSignTPM2PKCS11Login(b *testing.B) {
	tok := openTPM2PKCS11(b)
	digest := sha256.Sum256([]byte("bench"))
	for b.Loop() {
		tok.login(b)
		tok.sign(b, digest[:])
		tok.logout(b)
	}
}
