package testenv

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/tcp"
)

// persistentHandles lists the TPM's persistent objects over a fresh
// connection, failing the test if swtpm does not answer within a few
// seconds (it serves one connection at a time, so a client left running
// would keep it busy).
func persistentHandles(t *testing.T, s *SWTPMInstance) []tpm2.TPMHandle {
	t.Helper()
	type result struct {
		handles []tpm2.TPMHandle
		err     error
	}
	res := make(chan result, 1)
	go func() {
		tr, err := tcp.Open(tcp.Config{CommandAddress: s.Addr(), PlatformAddress: s.PlatformAddr()})
		if err != nil {
			res <- result{err: err}
			return
		}
		defer tr.Close()
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapHandles,
			Property:      uint32(tpm2.TPMHTPersistent) << 24,
			PropertyCount: 16,
		}.Execute(tr)
		if err != nil {
			res <- result{err: err}
			return
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			res <- result{err: err}
			return
		}
		res <- result{handles: hs.Handle}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			t.Fatalf("persistent handles: %v", r.err)
		}
		return r.handles
	case <-time.After(10 * time.Second):
		t.Fatal("swtpm did not answer: is a provisioning client still connected?")
	}
	return nil
}

func TestTPM2PKCS11ProvisionsStoreAndFreesSWTPM(t *testing.T) {
	s := SWTPM(t)
	if n := len(persistentHandles(t, s)); n != 0 {
		t.Fatalf("fresh swtpm has %d persistent objects", n)
	}
	module, store, env := TPM2PKCS11(t, s, "123456")
	if _, err := os.Stat(module); err != nil {
		t.Errorf("module: %v", err)
	}
	if _, err := os.Stat(filepath.Join(store, "tpm2_pkcs11.sqlite3")); err != nil {
		t.Errorf("store database: %v", err)
	}
	wantEnv := []string{
		"TPM2_PKCS11_TCTI=swtpm:host=127.0.0.1,port=" + strconv.Itoa(s.port),
		"TPM2_PKCS11_STORE=" + store,
	}
	if !slices.Equal(env, wantEnv) {
		t.Errorf("env = %q, want %q", env, wantEnv)
	}
	// tpm2_ptool init made the store's primary key persistent on this very
	// swtpm, and tpm2-abrmd has let go of it.
	if n := len(persistentHandles(t, s)); n != 1 {
		t.Errorf("after provisioning swtpm has %d persistent objects, want 1", n)
	}
}

func TestWithEnvReplacesKeys(t *testing.T) {
	got := withEnv([]string{"A=1", "AB=2", "B=3"}, "A=x", "C=y")
	want := []string{"AB=2", "B=3", "A=x", "C=y"}
	if !slices.Equal(got, want) {
		t.Fatalf("withEnv = %q, want %q", got, want)
	}
}
