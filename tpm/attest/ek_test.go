package attest

import (
	"bytes"
	"testing"
)

// TestCheckAnswer: only the challenge's own secret is a right answer.
func TestCheckAnswer(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, attestationSecretSize)
	if err := CheckAnswer(secret, bytes.Clone(secret)); err != nil {
		t.Fatalf("the right answer: %v", err)
	}
	for _, answer := range [][]byte{nil, secret[:31], bytes.Repeat([]byte{8}, attestationSecretSize)} {
		if err := CheckAnswer(secret, answer); err == nil {
			t.Errorf("answer %x accepted", answer)
		}
	}
	if err := CheckAnswer(nil, nil); err == nil {
		t.Error("an empty secret accepted an empty answer")
	}
}
