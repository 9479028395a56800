package pivbackend

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// A card's GUID (CHUID) and certificates are public: any card can copy them
// (issue #13, defect 3). What a copy cannot have is the private key of the
// card-authentication slot 9E, which signs without a PIN (SP 800-73-4 Part 1
// §3.2.4). Once per insertion, before any PIN is sent, a card with a 9E
// certificate is challenged: it signs a fresh random digest, which must
// verify with that certificate's key. A card that passes is identified by
// that key (Device "piv-9e:<sha256>", which registrations record); one that
// fails is marked so and gets no PIN from the daemon.

// CardAuthDevicePrefix starts the Device of a PIV card identified by its
// card-authentication key.
const CardAuthDevicePrefix = "piv-9e:"

// challengeCardAuthLocked challenges slot 9E, if the card has a certificate
// there, and records the outcome in info.
func (d *Device) challengeCardAuthLocked(ctx context.Context, info *device.Info) {
	cert, ok := d.certs[piv.SlotCardAuthentication.String()]
	if !ok {
		return
	}
	hash := cardAuthHash(cert.PublicKey)
	if hash == 0 {
		return // a key PIV cannot sign with here: nothing is claimed
	}
	info.CardAuth = device.CardAuthFailed
	nonce := make([]byte, 32)
	if _, err := rand.Read(nonce); err != nil {
		return
	}
	h := hash.New()
	h.Write(nonce)
	digest := h.Sum(nil)
	key := d.client.PrivateKey(piv.SlotCardAuthentication, cert.PublicKey)
	sig, err := key.SignContext(ctx, rand.Reader, digest, hash)
	if err != nil || !verifies(cert.PublicKey, hash, digest, sig) {
		return
	}
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	info.CardAuth = device.CardAuthVerified
	info.Device = CardAuthDevicePrefix + hex.EncodeToString(sum[:])
}

// cardAuthHash picks the hash of the challenge for a 9E key, 0 for a key
// the card cannot sign with: ECDSA with SHA-384 over P-384, else SHA-256,
// and PKCS #1 v1.5 with SHA-256 for RSA-2048.
func cardAuthHash(pub crypto.PublicKey) crypto.Hash {
	switch alg, err := piv.KeyAlgOf(pub); {
	case err != nil:
		return 0
	case alg == piv.KeyAlgP384:
		return crypto.SHA384
	default:
		return crypto.SHA256
	}
}

// verifies checks a card's signature over digest with pub.
func verifies(pub crypto.PublicKey, hash crypto.Hash, digest, sig []byte) bool {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(k, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(k, hash, digest, sig) == nil
	}
	return false
}

// keysFingerprint is a short hash of the card's key material and its reader,
// which tells apart two present cards that give the same GUID.
func keysFingerprint(info device.Info) string {
	h := sha256.New()
	for _, k := range info.Keys {
		h.Write(k.Certificate.RawSubjectPublicKeyInfo)
	}
	h.Write([]byte(info.Reader))
	return hex.EncodeToString(h.Sum(nil)[:4])
}

// distinguish gives d, not attached yet, an id of its own when another
// present card already has its GUID-based id: both stay listed, and neither
// one's removal takes the other from the list.
func (d *Device) distinguish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.ID += "-" + keysFingerprint(d.info)
	d.id = d.info.ID
}

// setID changes the device's id (restoreID), with the backend's lock held.
func (d *Device) setID(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info.ID = id
	d.id = id
}
