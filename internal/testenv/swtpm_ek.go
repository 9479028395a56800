package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// SWTPMWithEKCert starts a private swtpm as SWTPM does, manufactured
// first by swtpm_setup --create-ek-cert: its endorsement key certificates
// (RSA 2048 at NV index 0x01C00002, ECC at 0x01C00016) are issued by a
// local CA of its own (swtpm_localca, a root and an intermediate under the
// test's temporary directory), as a TPM vendor's CA issues them. EKCA
// returns that CA's certificates.
func SWTPMWithEKCert(t testing.TB) *SWTPMInstance {
	t.Helper()
	RequireBinaries(t, "swtpm", "swtpm_setup", "swtpm_localca", "certtool")
	base := t.TempDir()
	dir, ca := filepath.Join(base, "tpm"), filepath.Join(base, "ca")
	for _, d := range []string{dir, ca} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	localca := filepath.Join(base, "swtpm-localca.conf")
	setup := filepath.Join(base, "swtpm_setup.conf")
	writeFile(t, localca, "statedir = "+ca+"\nsigningkey = "+ca+"/signkey.pem\n"+
		"issuercert = "+ca+"/issuercert.pem\ncertserial = "+ca+"/certserial\n")
	writeFile(t, setup, "create_certs_tool = /usr/bin/swtpm_localca\n"+
		"create_certs_tool_config = "+localca+"\ncreate_certs_tool_options = /etc/swtpm-localca.options\n"+
		"active_pcr_banks = sha256\n")
	cmd := exec.Command("swtpm_setup", "--tpm2", "--tpmstate", dir, "--create-ek-cert", "--config", setup)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("swtpm_setup --create-ek-cert: %v\n%s", err, out)
	}
	s := &SWTPMInstance{port: FreeTCPPortPair(t), stateDir: dir, caDir: ca}
	s.start(t)
	t.Cleanup(s.stop)
	return s
}

// EKCA returns the PEM certificates of the CA that issued the TPM's
// endorsement key certificates (root and intermediate), for a verifier to
// trust; empty for a TPM started without EK certificates.
func (s *SWTPMInstance) EKCA(t testing.TB) []byte {
	t.Helper()
	if s.caDir == "" {
		return nil
	}
	var out []byte
	for _, f := range []string{"swtpm-localca-rootca-cert.pem", "issuercert.pem"} {
		b, err := os.ReadFile(filepath.Join(s.caDir, f))
		if err != nil {
			t.Fatalf("EK CA: %v", err)
		}
		out = append(out, b...)
	}
	return out
}

func writeFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}
