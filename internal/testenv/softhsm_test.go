package testenv

import (
	"os/exec"
	"strings"
	"testing"
)

func TestSoftHSM(t *testing.T) {
	s := SoftHSM(t)
	s.InitToken("first", "1234", "5678")
	s.GenerateKey("first", "1234", "EC:prime256v1", "01", "p256")
	cmd := exec.Command("pkcs11-tool", "--module", s.Module(), "--token-label", "first", "--list-objects", "--type", "pubkey")
	cmd.Env = s.Env()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "p256") || !strings.Contains(string(out), "ID:         01") {
		t.Errorf("generated key not listed:\n%s", out)
	}
	// A second instance is a separate store: it has no tokens.
	other := SoftHSM(t)
	cmd = exec.Command("softhsm2-util", "--show-slots")
	cmd.Env = other.Env()
	out, _ = cmd.CombinedOutput()
	if strings.Contains(string(out), "first") {
		t.Errorf("second instance sees the first one's token:\n%s", out)
	}
}
