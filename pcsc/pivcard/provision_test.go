package pivcard

import (
	"bytes"
	"context"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"path/filepath"
	"testing"

	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// transmit sends cmd to the card and parses the answer.
func transmit(t *testing.T, c *Card, cmd apdu.Command) apdu.Response {
	t.Helper()
	b, err := cmd.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r, err := apdu.ParseResponse(c.Transmit(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func mgmCipher(t *testing.T, alg byte, key []byte) cipher.Block {
	t.Helper()
	var blk cipher.Block
	var err error
	if alg == alg3DES {
		blk, err = des.NewTripleDESCipher(key)
	} else {
		blk, err = aes.NewCipher(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return blk
}

// mutualAuth authenticates the management key as yubico-piv-tool does
// (SP 800-73-4 Part 2 Appendix A.2) and returns the final status word.
func mutualAuth(t *testing.T, c *Card, alg byte, key []byte) uint16 {
	t.Helper()
	blk := mgmCipher(t, alg, key)
	bs := blk.BlockSize()
	r := transmit(t, c, apdu.Command{INS: piv.InsGeneralAuthenticate, P1: alg, P2: keyRefMgm,
		Data: tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagWitness, nil)), Le: 256})
	if r.SW != apdu.SWSuccess {
		return r.SW
	}
	tmpl, _ := tlv.Find(r.Data, piv.TagDynAuth)
	enc, err := tlv.Find(tmpl, piv.TagWitness)
	if err != nil || len(enc) != bs {
		t.Fatalf("witness answer %X", r.Data)
	}
	witness := make([]byte, bs)
	blk.Decrypt(witness, enc)
	challenge := bytes.Repeat([]byte{0x5A}, bs)
	r = transmit(t, c, apdu.Command{INS: piv.InsGeneralAuthenticate, P1: alg, P2: keyRefMgm,
		Data: tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagWitness, witness), tlv.Encode(piv.TagChallenge, challenge)), Le: 256})
	if r.SW != apdu.SWSuccess {
		return r.SW
	}
	tmpl, _ = tlv.Find(r.Data, piv.TagDynAuth)
	got, _ := tlv.Find(tmpl, piv.TagResponse)
	want := make([]byte, bs)
	blk.Encrypt(want, challenge)
	if !bytes.Equal(got, want) {
		t.Fatalf("card's answer to our challenge %X, want %X: the card does not hold the key", got, want)
	}
	return r.SW
}

// TestECDSAShortInput signs a SHA-256 digest with a P-384 key: the card
// left-pads it, and the signature verifies over the digest as ECDSA defines
// it for short hashes.
func TestECDSAShortInput(t *testing.T) {
	c, err := New(Options{Slots: []SlotSpec{{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP384}}})
	if err != nil {
		t.Fatal(err)
	}
	client := piv.NewClient(Transmitter(c))
	if err := client.VerifyPIN(context.Background(), []byte(DefaultPIN)); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("short input"))
	sign := func(challenge []byte) apdu.Response {
		return transmit(t, c, apdu.Command{INS: piv.InsGeneralAuthenticate, P1: byte(piv.KeyAlgP384), P2: byte(piv.SlotAuthentication),
			Data: tlv.Encode(piv.TagDynAuth, tlv.Encode(piv.TagResponse, nil), tlv.Encode(piv.TagChallenge, challenge)), Le: 256})
	}
	r := sign(digest[:])
	if r.SW != apdu.SWSuccess {
		t.Fatalf("SHA-256 digest with P-384: %04X, want 9000", r.SW)
	}
	tmpl, _ := tlv.Find(r.Data, piv.TagDynAuth)
	sig, _ := tlv.Find(tmpl, piv.TagResponse)
	cert, _ := x509.ParseCertificate(c.Certificate(piv.SlotAuthentication))
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("signature over the padded digest does not verify over the digest")
	}
	if r := sign(make([]byte, 49)); r.SW != apdu.SWIncorrectData {
		t.Errorf("49-byte input with P-384: %04X, want 6A80", r.SW)
	}
}

func TestRSAInputMustBeModulusSize(t *testing.T) {
	if _, ok := fitChallenge(piv.KeyAlgRSA2048, make([]byte, 255)); ok {
		t.Error("255-byte RSA input accepted")
	}
	if got, ok := fitChallenge(piv.KeyAlgP256, []byte{1, 2}); !ok || len(got) != 32 || got[31] != 2 || got[30] != 1 {
		t.Errorf("fitChallenge(P-256, 0102) = %X, %v", got, ok)
	}
}

func TestGetChallenge(t *testing.T) {
	c := newTestCard(t)
	a := transmit(t, c, apdu.Command{INS: insGetChal})
	b := transmit(t, c, apdu.Command{INS: insGetChal, Le: 16})
	if a.SW != apdu.SWSuccess || len(a.Data) != 8 || b.SW != apdu.SWSuccess || len(b.Data) != 16 {
		t.Fatalf("GET CHALLENGE = %X %04X, %X %04X; want 8 and 16 bytes", a.Data, a.SW, b.Data, b.SW)
	}
	if bytes.Equal(a.Data, b.Data[:8]) {
		t.Error("two challenges start alike")
	}
}

// TestManagementKeyProvisioning authenticates with the default 3DES key,
// generates a key, imports a certificate for it, replaces the management key
// by an AES-256 one and checks that all of it survives a reload.
func TestManagementKeyProvisioning(t *testing.T) {
	c := newTestCard(t)
	path := filepath.Join(t.TempDir(), "card.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	if sw := mutualAuth(t, c, alg3DES, bytes.Repeat([]byte{9}, 24)); sw != apdu.SWSecurityStatus {
		t.Fatalf("wrong management key: %04X, want 6982", sw)
	}
	if sw := mutualAuth(t, c, alg3DES, DefaultMgmKey); sw != apdu.SWSuccess {
		t.Fatalf("default management key: %04X", sw)
	}
	r := transmit(t, c, apdu.Command{INS: insGenerate, P2: byte(piv.SlotSignature),
		Data: tlv.Encode(tagCRT, tlv.Encode(tagAlgorithm, []byte{byte(piv.KeyAlgP256)}), tlv.Encode(tagPINPolicy, []byte{1})), Le: 256})
	if r.SW != apdu.SWSuccess {
		t.Fatalf("GENERATE: %04X", r.SW)
	}
	tmpl, _ := tlv.Find(r.Data, tagPublicKey)
	point, _ := tlv.Find(tmpl, 0x86)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		t.Fatalf("GENERATE answered %X, not a P-256 point: %v", r.Data, err)
	}

	// A certificate for the new key, written as yubico-piv-tool writes it.
	st := c.store.(*softStore).st
	signer := st.Slots[len(st.Slots)-1].Key
	der, err := selfSign(signer, "Provisioned")
	if err != nil {
		t.Fatal(err)
	}
	obj := append(tlv.Encode(piv.TagTagList, []byte{0x5F, 0xC1, 0x0A}),
		tlv.Encode(piv.TagData, tlv.Encode(piv.TagCertificate, der), tlv.Encode(piv.TagCertInfo, []byte{0}), tlv.Encode(piv.TagErrorDetect, nil))...)
	if _, err := apdu.Exchange(context.Background(), Transmitter(c), apdu.Command{INS: insPutData, P1: 0x3F, P2: 0xFF, Data: obj}); err != nil {
		t.Fatalf("PUT DATA: %v", err)
	}
	if bad := transmit(t, c, apdu.Command{INS: insPutData, P1: 0x3F, P2: 0xFF,
		Data: append(tlv.Encode(piv.TagTagList, []byte{0x7E}), tlv.Encode(piv.TagData, nil)...)}); bad.SW != apdu.SWIncorrectData {
		t.Errorf("PUT DATA of the Discovery object: %04X, want 6A80", bad.SW)
	}

	aesKey := bytes.Repeat([]byte{0xA5}, 32)
	if r := transmit(t, c, apdu.Command{INS: insSetMgm, P1: 0xFF, P2: 0xFF, Data: append([]byte{algAES256, keyRefMgm, 32}, aesKey...)}); r.SW != apdu.SWSuccess {
		t.Fatalf("SET MANAGEMENT KEY: %04X", r.SW)
	}

	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if sw := mutualAuth(t, loaded, alg3DES, DefaultMgmKey); sw != apdu.SWIncorrectP1P2 {
		t.Errorf("old 3DES key after the change: %04X, want 6A86", sw)
	}
	if sw := mutualAuth(t, loaded, algAES256, aesKey); sw != apdu.SWSuccess {
		t.Errorf("new AES-256 key: %04X", sw)
	}
	client := piv.NewClient(Transmitter(loaded))
	cert, err := client.Certificate(context.Background(), piv.SlotSignature)
	if err != nil || !bytes.Equal(cert.Raw, der) {
		t.Fatalf("9C certificate after reload: %v", err)
	}
	if err := client.VerifyPIN(context.Background(), []byte(DefaultPIN)); err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("provisioned"))
	sig, err := client.PrivateKey(piv.SlotSignature, cert.PublicKey).SignContext(context.Background(), rand.Reader, digest[:], crypto.SHA256)
	if err != nil || !ecdsa.VerifyASN1(pub, digest[:], sig) {
		t.Errorf("signature with the generated key: %v", err)
	}
	loaded.Reset()
	if r := transmit(t, loaded, apdu.Command{INS: insGenerate, P2: byte(piv.SlotSignature),
		Data: tlv.Encode(tagCRT, tlv.Encode(tagAlgorithm, []byte{byte(piv.KeyAlgP256)}))}); r.SW != apdu.SWSecurityStatus {
		t.Errorf("GENERATE after reset: %04X, want 6982", r.SW)
	}
}

// TestExternalAuthenticate checks the one-way form: 7C { 81 00 } for a
// challenge, 7C { 82 encrypted challenge } to answer it.
func TestExternalAuthenticate(t *testing.T) {
	c := newTestCard(t)
	ga := func(inner ...[]byte) apdu.Response {
		return transmit(t, c, apdu.Command{INS: piv.InsGeneralAuthenticate, P1: alg3DES, P2: keyRefMgm, Data: tlv.Encode(piv.TagDynAuth, inner...), Le: 256})
	}
	for _, key := range [][]byte{bytes.Repeat([]byte{7}, 24), DefaultMgmKey} {
		r := ga(tlv.Encode(piv.TagChallenge, nil))
		tmpl, _ := tlv.Find(r.Data, piv.TagDynAuth)
		ch, _ := tlv.Find(tmpl, piv.TagChallenge)
		if len(ch) != 8 {
			t.Fatalf("challenge %X", r.Data)
		}
		enc := make([]byte, 8)
		mgmCipher(t, alg3DES, key).Encrypt(enc, ch)
		r = ga(tlv.Encode(piv.TagResponse, enc))
		want := apdu.SWSecurityStatus
		if bytes.Equal(key, DefaultMgmKey) {
			want = apdu.SWSuccess
		}
		if r.SW != want {
			t.Errorf("key %s: %04X, want %04X", hex.EncodeToString(key[:2]), r.SW, want)
		}
	}
	// A response without a challenge pending is refused.
	if r := ga(tlv.Encode(piv.TagResponse, make([]byte, 8))); r.SW != apdu.SWIncorrectData {
		t.Errorf("unsolicited response: %04X, want 6A80", r.SW)
	}
}
