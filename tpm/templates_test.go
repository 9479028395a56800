package tpm

import (
	"testing"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/device"
)

// TestTemplatesForTheDeviceAlgorithms: every key algorithm the API lets a
// virtual card be created with (device.VirtualCardAlgorithms) has a key
// template of that type, so the two lists of names cannot drift apart.
func TestTemplatesForTheDeviceAlgorithms(t *testing.T) {
	want := map[device.KeyAlgorithm]tpm2.TPMAlgID{device.ECCP256: tpm2.TPMAlgECC, device.ECCP384: tpm2.TPMAlgECC, device.RSAKey(2048): tpm2.TPMAlgRSA}
	for _, alg := range device.VirtualCardAlgorithms {
		tmpl, err := signingKeyTemplate(string(alg), nil)
		if err != nil {
			t.Errorf("%s: %v", alg, err)
			continue
		}
		if tmpl.Type != want[alg] {
			t.Errorf("%s: a template of type %v", alg, tmpl.Type)
		}
	}
}
