// Package adminkey is the admin key holder's side of a virtual smart
// card's admin unblock: IT signs the card's two challenges with its ECDSA
// P-256 key, away from the device (hwauthctl vsc unblock --admin-key).
// The device's TPM checks the responses itself (TPM2_PolicySigned, in
// package tpm); this package opens no TPM and needs no cgo.
package adminkey

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"

	"github.com/hwauthd/hwauthd/device"
)

// Sign returns the two responses to ch (ASN.1 DER ECDSA signatures): each
// challenge signed over Digest(challenge).
func Sign(key *ecdsa.PrivateKey, ch device.AdminChallenge) ([2][]byte, error) {
	var out [2][]byte
	for i, n := range ch.Challenges {
		sum := Digest(n)
		sig, err := ecdsa.SignASN1(rand.Reader, key, sum[:])
		if err != nil {
			return out, err
		}
		out[i] = sig
	}
	return out, nil
}

// Digest is what the admin key signs for a challenge: aHash of
// TPM2_PolicySigned (TPM 2.0 Part 3 §23.3) over the session's nonceTPM
// with expiration 0 and no cpHashA or policyRef, SHA-256(nonce || 00 00 00
// 00).
func Digest(nonce []byte) [32]byte {
	return sha256.Sum256(binary.BigEndian.AppendUint32(append([]byte(nil), nonce...), 0))
}
