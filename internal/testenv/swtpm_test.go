package testenv

import (
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// readEKName creates the ECC EK primary and returns its name, which depends
// only on the device's endorsement seed.
func readEKName(t *testing.T, s *SWTPMInstance) string {
	t.Helper()
	tr, err := tcp.Open(tcp.Config{CommandAddress: s.Addr(), PlatformAddress: s.PlatformAddr()})
	if err != nil {
		t.Fatalf("open %s: %v", s.Addr(), err)
	}
	defer tr.Close()
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tpm2.ECCEKTemplate),
	}.Execute(tr)
	if err != nil {
		t.Fatalf("create EK: %v", err)
	}
	if _, err := (tpm2.FlushContext{FlushHandle: rsp.ObjectHandle}).Execute(tr); err != nil {
		t.Fatalf("flush: %v", err)
	}
	return string(rsp.Name.Buffer)
}

func TestSWTPMRestartKeepsDeviceAndTwoInstancesDiffer(t *testing.T) {
	a := SWTPM(t)
	b := SWTPM(t)
	if a.Addr() == b.Addr() || a.StateDir() == b.StateDir() {
		t.Fatalf("instances share address or state: %s %s", a.Addr(), b.Addr())
	}
	nameA := readEKName(t, a)
	if nameB := readEKName(t, b); nameA == nameB {
		t.Fatal("two swtpm instances have the same endorsement key")
	}
	a.Restart(t)
	if again := readEKName(t, a); again != nameA {
		t.Fatal("endorsement key changed across Restart")
	}
}
