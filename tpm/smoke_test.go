package tpm

import "testing"

func TestSmoke(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
}
