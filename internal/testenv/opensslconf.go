package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// OpenSSLPKCS11Env returns the environment entry that points OpenSSL's
// PKCS#11 engine (libengine-pkcs11-openssl) at module alone: through
// p11-kit's proxy, its default, it would also load every other registered
// module, tpm2-pkcs11 among them, which looks for a TPM of its own.
func OpenSSLPKCS11Env(t testing.TB, module string) string {
	t.Helper()
	conf := filepath.Join(t.TempDir(), "openssl.cnf")
	body := "openssl_conf = init\n[init]\nengines = engines\n[engines]\npkcs11 = pkcs11\n" +
		"[pkcs11]\nengine_id = pkcs11\nMODULE_PATH = " + module + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return "OPENSSL_CONF=" + conf
}
