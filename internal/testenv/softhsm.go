package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// SoftHSMModule is the SoftHSM2 PKCS#11 module installed by Debian's
// softhsm2 package.
const SoftHSMModule = "/usr/lib/softhsm/libsofthsm2.so"

// SoftHSMInstance is a private SoftHSM2 token store for one test: its own
// SOFTHSM2_CONF and token directory under t.TempDir. Processes that load
// the module see it when they run with Env (or with SOFTHSM2_CONF set to
// Conf in this process before the module's C_Initialize).
type SoftHSMInstance struct {
	t    testing.TB
	dir  string
	conf string
}

// SoftHSM creates a private SoftHSM2 configuration with an empty token
// directory. It stops the test through Missing when softhsm2 or OpenSC's
// pkcs11-tool (used to generate keys) are not installed.
func SoftHSM(t testing.TB) *SoftHSMInstance {
	t.Helper()
	RequireBinaries(t, "softhsm2-util", "pkcs11-tool")
	RequireFiles(t, SoftHSMModule)
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatalf("softhsm token dir: %v", err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := "directories.tokendir = " + tokens + "\nobjectstore.backend = file\nlog.level = ERROR\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("softhsm config: %v", err)
	}
	return &SoftHSMInstance{t: t, dir: dir, conf: conf}
}

// Module returns the path of the SoftHSM2 PKCS#11 module.
func (s *SoftHSMInstance) Module() string { return SoftHSMModule }

// Conf returns the path of the private SOFTHSM2_CONF file.
func (s *SoftHSMInstance) Conf() string { return s.conf }

// Env returns the process environment with SOFTHSM2_CONF pointing at the
// private configuration, for helper processes that load the module.
func (s *SoftHSMInstance) Env() []string {
	env := []string{"SOFTHSM2_CONF=" + s.conf}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SOFTHSM2_CONF=") {
			env = append(env, kv)
		}
	}
	return env
}

// InitToken initializes a token with label, user PIN and security officer
// PIN in the next free slot.
func (s *SoftHSMInstance) InitToken(label, pin, soPin string) {
	s.t.Helper()
	s.run("softhsm2-util", "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin)
}

// GenerateKey creates a key pair on the token labelled token: keyType is
// pkcs11-tool's --key-type ("EC:prime256v1", "EC:secp384r1", "rsa:2048"),
// id the CKA_ID in hex, label the objects' CKA_LABEL.
func (s *SoftHSMInstance) GenerateKey(token, pin, keyType, id, label string) {
	s.t.Helper()
	s.run("pkcs11-tool", "--module", SoftHSMModule, "--token-label", token, "--login", "--pin", pin,
		"--keypairgen", "--key-type", keyType, "--id", id, "--label", label)
}

// WriteCertificate stores a DER certificate on the token under CKA_ID id.
func (s *SoftHSMInstance) WriteCertificate(token, pin, id string, der []byte) {
	s.t.Helper()
	f := filepath.Join(s.dir, "cert-"+id+".der")
	if err := os.WriteFile(f, der, 0o600); err != nil {
		s.t.Fatalf("write certificate: %v", err)
	}
	s.run("pkcs11-tool", "--module", SoftHSMModule, "--token-label", token, "--login", "--pin", pin,
		"--write-object", f, "--type", "cert", "--id", id)
}

// run runs a SoftHSM tool against the private configuration.
func (s *SoftHSMInstance) run(name string, args ...string) {
	s.t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = s.Env()
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("%s %s: %v\n%s", name, args[0], err, out)
	}
}

// DeleteToken removes the token labelled label, as if it were pulled out.
func (s *SoftHSMInstance) DeleteToken(label string) {
	s.t.Helper()
	s.run("softhsm2-util", "--delete-token", "--token", label)
}
