package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/ipc"
)

// cliCase is one invocation: stdin (given with --pin-stdin when not empty),
// arguments, and the exit status and output fragments expected.
type cliCase struct {
	name   string
	stdin  string
	args   []string
	code   int
	out    string
	errOut string
}

// runCases runs the cases in order (later ones see the state earlier ones
// left) and checks that no line typed on stdin, a PIN or PUK, is echoed.
func runCases(t *testing.T, hw func(string, ...string) (int, string, string), cases []cliCase) {
	t.Helper()
	for _, tt := range cases {
		args := tt.args
		if tt.stdin != "" {
			args = append([]string{"--pin-stdin"}, args...)
		}
		code, out, errOut := hw(tt.stdin, args...)
		if code != tt.code || !strings.Contains(out, tt.out) || !strings.Contains(errOut, tt.errOut) {
			t.Errorf("%s: exit %d (want %d)\nstdout: %s\nstderr: %s\nwant stdout %q, stderr %q", tt.name, code, tt.code, out, errOut, tt.out, tt.errOut)
		}
		for _, secret := range strings.Split(tt.stdin, "\n") {
			if len(secret) >= 4 && (strings.Contains(out, secret) || strings.Contains(errOut, secret)) {
				t.Errorf("%s: secret %q appears in the output", tt.name, secret)
			}
		}
	}
}

// fields returns the whitespace-separated fields of the first output line
// that starts with prefix.
func fields(out, prefix string) []string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, prefix) {
			return strings.Fields(l)
		}
	}
	return nil
}

// onTerminal makes the CLI believe stdin is a terminal for this test.
func onTerminal(t *testing.T) {
	old := stdinIsTerminal
	stdinIsTerminal = func() bool { return true }
	t.Cleanup(func() { stdinIsTerminal = old })
}

// requested reports whether the fake saw a request "METHOD /escaped/path".
func (f *fakeAPI) requested(req string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Contains(f.state.paths, req)
}

func TestRegistrationsTable(t *testing.T) {
	f, hw := setup(t)
	code, out, errOut := hw("", "registrations")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !f.requested("GET /v1/users/alice/registrations") {
		t.Error("registrations did not default to the caller's account")
	}
	if got := strings.Fields(strings.SplitN(out, "\n", 2)[0]); !slices.Equal(got, []string{"ID", "DEFAULT", "KIND", "LABEL", "AUTHENTICATOR", "CREATED", "LAST", "USED"}) {
		t.Errorf("header = %q", got)
	}
	r1, r2 := fields(out, "reg-1"), fields(out, "reg-2")
	if len(r1) != 9 || r1[1] != "*" || r1[3]+" "+r1[4] != "work card" || r1[5] != "piv-1" || r1[6] != "2026-01-02" || r1[8] != "never" {
		t.Errorf("reg-1 row = %q", r1)
	}
	if len(r2) != 8 || r2[1] != ipc.KindVirtualSmartcard || r2[6] != "2026-01-02" {
		t.Errorf("reg-2 row = %q", r2)
	}
	if !strings.Contains(out, "2 of 5 authenticators registered for alice.") {
		t.Errorf("no count against the limit:\n%s", out)
	}
	code, out, _ = hw("", "registrations", "--user", "bob")
	if code != 0 || strings.Contains(out, "DEFAULT") || !strings.Contains(out, "0 of 5 authenticators registered for bob.") {
		t.Errorf("bob: exit %d\n%s", code, out)
	}
	code, out, _ = hw("", "--json", "registrations")
	var rs ipc.RegistrationsResponse
	if code != 0 || json.Unmarshal([]byte(out), &rs) != nil || rs.Default != "reg-1" || len(rs.Registrations) != 2 || rs.Limit != 5 {
		t.Errorf("--json: exit %d %s", code, out)
	}
}

func TestRegisterAndUnregister(t *testing.T) {
	f, hw := setup(t)
	f.mu.Lock()
	for i := range 5 {
		f.state.regs["carol"] = append(f.state.regs["carol"], ipc.Registration{ID: "c" + string(rune('0'+i)), Kind: ipc.KindSmartcard})
	}
	f.mu.Unlock()
	runCases(t, hw, []cliCase{
		{"register", "123456\n", []string{"register", "--label", "desk card", "piv-9"}, 0, "Registered desk card (smartcard) for alice as reg-new.", ""},
		{"register wrong PIN", "0000\n", []string{"register", "piv-9"}, exitPINWrong, "", "wrong PIN, 2 tries left"},
		{"register over the limit", "123456\n", []string{"register", "--user", "carol", "piv-9"}, exitError, "", "contact your administrator"},
		{"register for a new user is default", "123456\n", []string{"register", "--user", "dave", "piv-9"}, 0, "It is dave's default.", ""},
		{"register without PIN source", "", []string{"register", "piv-9"}, exitUsage, "", "use --pin-stdin"},
		{"register without id", "", []string{"register"}, exitUsage, "", "takes 1 argument"},
		{"unregister needs --yes", "", []string{"unregister", "reg-1"}, exitUsage, "", "will not remove a registration without confirmation: standard input is not a terminal; add --yes"},
		{"unregister unknown", "", []string{"unregister", "--yes", "nope"}, exitNotFound, "", `alice has no registration "nope"`},
		{"unregister the default", "", []string{"unregister", "--yes", "reg-1"}, 0, "Removed work card (smartcard) from alice.\nThe default is now laptop (virtual-smartcard), reg-2.", ""},
		{"unregister other", "", []string{"unregister", "--yes", "reg-new"}, 0, "Removed desk card (smartcard) from alice.\n", ""},
		{"default unknown", "", []string{"default", "reg-9"}, exitNotFound, "", `no registration "reg-9"`},
		{"default", "", []string{"default", "--user", "carol", "c3"}, 0, "c3 is now carol's default.", ""},
	})
	if !f.requested("POST /v1/users/dave/registrations") || !f.requested("PUT /v1/users/carol/default") {
		t.Errorf("--user not used: %q", f.state.paths)
	}
	f.mu.Lock()
	regs := f.state.regs["alice"]
	f.mu.Unlock()
	if len(regs) != 1 || regs[0].ID != "reg-2" || !regs[0].Default {
		t.Errorf("alice's registrations after removals = %+v", regs)
	}
	code, out, _ := hw("", "--json", "unregister", "--yes", "reg-2")
	var rm ipc.RegistrationRemoved
	if code != 0 || json.Unmarshal([]byte(out), &rm) != nil || rm.Removed != "reg-2" || rm.Default != "" {
		t.Errorf("--json unregister: exit %d %s", code, out)
	}
}

func TestUnregisterAsksOnTerminal(t *testing.T) {
	f, hw := setup(t)
	onTerminal(t)
	const prompt = "Remove laptop (virtual-smartcard) from alice? This cannot be undone. [y/N] "
	for _, answer := range []string{"n\n", "\n", "", "yess\n"} {
		code, out, errOut := hw(answer, "unregister", "reg-2")
		if code != exitError || out != "" || !strings.HasPrefix(errOut, prompt) || !strings.Contains(errOut, "nothing was changed") {
			t.Errorf("answer %q: exit %d\nstdout %s\nstderr %s", answer, code, out, errOut)
		}
	}
	if f.requested("DELETE /v1/users/alice/registrations/reg-2") {
		t.Fatal("removed without a yes")
	}
	code, out, errOut := hw("Y\n", "unregister", "reg-2")
	if code != 0 || !strings.Contains(out, "Removed laptop (virtual-smartcard) from alice.") || strings.Contains(out, "default") {
		t.Errorf("yes: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if !f.requested("DELETE /v1/users/alice/registrations/reg-2") {
		t.Error("not removed after yes")
	}
	code, out, _ = hw("yes\n", "unregister", "reg-1")
	if code != 0 || !strings.Contains(out, "alice has no registration left, so no default.") {
		t.Errorf("last one: exit %d %s", code, out)
	}
}

func TestSessionCommands(t *testing.T) {
	f, hw := setup(t)
	runCases(t, hw, []cliCase{
		{"signin", "123456\n", []string{"signin"}, 0, "Signed in alice with piv-1.\nSession ses-new, expires 2026-01-02", ""},
		{"signin wrong PIN", "9999\n", []string{"signin", "--user", "bob"}, exitPINWrong, "", "wrong PIN, 2 tries left\nnext: type the PIN again carefully"},
		{"signin not a terminal", "", []string{"signin"}, exitUsage, "", "use --pin-stdin"},
		{"sessions", "", []string{"sessions"}, 0, "ses-b", ""},
		{"signout", "", []string{"signout", "ses-a"}, 0, "Signed out: session ses-a ended.", ""},
		{"signout unknown", "", []string{"signout", "ses-a"}, exitNotFound, "", `no session "ses-a"`},
		{"forget needs --yes", "", []string{"forget"}, exitUsage, "", "add --yes"},
		{"forget", "", []string{"forget", "--yes", "--user", "bob"}, 0, "Forgot bob's sign-in information: deleted last_authenticator.", ""},
	})
	f.mu.Lock()
	if f.state.signIn.User != "bob" || f.state.forgot != "bob" || f.state.signedOut != "ses-a" {
		t.Errorf("daemon saw sign-in %+v, forget %q, sign-out %q", f.state.signIn, f.state.forgot, f.state.signedOut)
	}
	f.mu.Unlock()
	code, out, _ := hw("123456\n", "--pin-stdin", "--json", "signin", "--authenticator", "vsc-1")
	var res ipc.SignInResponse
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Session.Authenticator != "vsc-1" || !res.Session.ExpiresAt.Equal(t0.Add(8*time.Hour)) {
		t.Errorf("signin --json: exit %d %s", code, out)
	}
	code, out, _ = hw("", "sessions", "--user", "bob")
	if code != 0 || fields(out, "ses-b") == nil || strings.Contains(out, "alice") {
		t.Errorf("sessions --user bob: exit %d\n%s", code, out)
	}
	code, out, _ = hw("", "--json", "sessions", "--user", "alice")
	var ss ipc.SessionsResponse
	if code != 0 || json.Unmarshal([]byte(out), &ss) != nil || len(ss.Sessions) != 2 || ss.Sessions[0].User != "alice" {
		t.Errorf("sessions --json --user alice: exit %d %s", code, out)
	}
	code, out, _ = hw("", "sessions", "--user", "nobody")
	if code != 0 || out != "No session.\n" {
		t.Errorf("no sessions: %d %q", code, out)
	}
	f.mu.Lock()
	f.state.forgot = ""
	f.mu.Unlock()
	code, out, _ = hw("", "signout", "--forget", "ses-b")
	if code != 0 || out != "Signed out: session ses-b ended. Forgot bob's sign-in information: deleted last_authenticator, cached_pin.\n" {
		t.Errorf("signout --forget: exit %d %q", code, out)
	}
	f.mu.Lock()
	if f.state.signedOut != "ses-b" || f.state.forgot != "bob" {
		t.Errorf("signout --forget: daemon saw sign-out %q, forget %q", f.state.signedOut, f.state.forgot)
	}
	f.mu.Unlock()
}

// selfSigned returns a certificate in DER.
func selfSigned(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Alice"}, NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestVSCCommands(t *testing.T) {
	f, hw := setup(t)
	dir := t.TempDir()
	der := selfSigned(t)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	files := map[string][]byte{"cert.pem": []byte("junk before\n" + certPEM), "cert.der": der, "junk.txt": []byte("not a certificate")}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	csrFile := filepath.Join(dir, "alice.csr")
	runCases(t, hw, []cliCase{
		{"create", "123456\n12345678\n", []string{"vsc", "create", "--label", "alice-laptop"}, 0, "ID:           vsc-alice-laptop", ""},
		{"create PUK missing", "123456\n", []string{"vsc", "create", "--label", "x"}, exitError, "", "read PUK from standard input: no more lines"},
		{"create no label", "", []string{"vsc", "create"}, exitUsage, "", `required flag(s) "label" not set`},
		{"create bad algorithm", "", []string{"vsc", "create", "--label", "x", "--algorithm", "dsa"}, exitUsage, "", `unknown algorithm "dsa"`},
		{"create not a terminal", "", []string{"vsc", "create", "--label", "x"}, exitUsage, "", "use --pin-stdin"},
		{"list", "", []string{"vsc", "list"}, 0, "alice-laptop", ""},
		{"show", "", []string{"vsc", "show", "vsc-1"}, 0, "Public key:\n-----BEGIN PUBLIC KEY-----\nAQ==", ""},
		{"show unknown", "", []string{"vsc", "show", "vsc-9"}, exitNotFound, "", `no virtual smart card "vsc-9"`},
		{"csr wrong PIN", "1111\n", []string{"vsc", "csr", "vsc-1", "--subject", "CN=Alice"}, exitPINWrong, "", "2 tries left"},
		{"csr", "123456\n", []string{"vsc", "csr", "vsc-1", "--subject", "CN=Alice", "--upn", "alice@example.com", "--email", "a@example.com", "--email", "b@example.com"}, 0, "-----BEGIN CERTIFICATE REQUEST-----\nQ1NS\n", ""},
		{"csr no subject", "123456\n", []string{"vsc", "csr", "vsc-1"}, exitUsage, "", `"subject" not set`},
		{"import junk", "", []string{"vsc", "import-cert", "vsc-1", filepath.Join(dir, "junk.txt")}, exitError, "", "holds no certificate"},
		{"import missing file", "", []string{"vsc", "import-cert", "vsc-1", filepath.Join(dir, "none")}, exitError, "", "no such file"},
		{"import DER", "", []string{"vsc", "import-cert", "vsc-1", filepath.Join(dir, "cert.der")}, 0, "Imported the certificate into laptop (vsc-1).", ""},
		{"delete needs --yes", "", []string{"vsc", "delete", "vsc-1"}, exitUsage, "", "will not delete a virtual smart card without confirmation"},
		{"delete", "", []string{"vsc", "delete", "--yes", "vsc-1"}, 0, "Deleted virtual smart card laptop (vsc-1).", ""},
		{"delete unknown", "", []string{"vsc", "delete", "--yes", "vsc-1"}, exitNotFound, "", "no virtual smart card"},
		{"vsc alone", "", []string{"vsc"}, exitUsage, "", "vsc needs a subcommand"},
	})
	f.mu.Lock()
	st := *f.state
	f.mu.Unlock()
	if st.create.Label != "alice-laptop" || st.create.Algorithm != string(device.ECCP256) || st.create.Attest {
		t.Errorf("create sent %+v", st.create)
	}
	if st.csr.Subject != "CN=Alice" || !slices.Equal(st.csr.Emails, []string{"a@example.com", "b@example.com"}) || st.csr.UPN != "alice@example.com" {
		t.Errorf("csr sent %+v", st.csr)
	}
	if st.cert != certPEM || st.deletedCard != "vsc-1" {
		t.Errorf("import sent %q; deleted %q", st.cert, st.deletedCard)
	}

	code, out, errOut := hw("654321\n87654321\n", "--pin-stdin", "vsc", "create", "--label", "k", "--algorithm", "rsa-2048", "--attest")
	if code != 0 || !strings.Contains(out, base64.StdEncoding.EncodeToString([]byte("certify"))) {
		t.Errorf("create --attest: exit %d\n%s%s", code, out, errOut)
	}
	f.mu.Lock()
	if f.state.pin != "654321" || f.state.puk != "87654321" || !f.state.create.Attest || f.state.create.Algorithm != string(device.RSAKey(2048)) {
		t.Errorf("daemon got PIN %q PUK %q request %+v", f.state.pin, f.state.puk, f.state.create)
	}
	f.mu.Unlock()

	code, out, _ = hw("123456\n", "--pin-stdin", "vsc", "csr", "vsc-k", "--subject", "CN=K", "--out", csrFile)
	b, err := os.ReadFile(csrFile)
	if code != 0 || out != "" || err != nil || !strings.HasPrefix(string(b), "-----BEGIN CERTIFICATE REQUEST-----") {
		t.Errorf("csr --out: exit %d, stdout %q, file %q %v", code, out, b, err)
	}
	code, out, _ = hw("", "vsc", "import-cert", "vsc-k", filepath.Join(dir, "cert.pem"))
	f.mu.Lock()
	if code != 0 || f.state.cert != certPEM {
		t.Errorf("import PEM: exit %d %s; daemon got %q", code, out, f.state.cert)
	}
	f.mu.Unlock()
	code, out, _ = hw("", "--json", "vsc", "list")
	var cards ipc.VirtualSmartcardsResponse
	if code != 0 || json.Unmarshal([]byte(out), &cards) != nil || len(cards.VirtualSmartcards) != 2 || cards.VirtualSmartcards[1].Certificate != certPEM {
		t.Errorf("vsc list --json: exit %d %s", code, out)
	}
	code, out, _ = hw("", "vsc", "list")
	if row := fields(out, "vsc-k"); code != 0 || len(row) != 6 || row[3] != "yes" {
		t.Errorf("vsc list row %q\n%s", row, out)
	}
}

func TestLinkCommands(t *testing.T) {
	f, hw := setup(t)
	const subject = "subject:CN=Alice Smith/O=Example, Inc."
	runCases(t, hw, []cliCase{
		{"links", "", []string{"links", "--user", "alice"}, 0, "upn:alice@example.com  root        2026-01-02", ""},
		{"links none", "", []string{"links", "--user", "bob"}, 0, "No identity is linked to bob.", ""},
		{"links: your own", "", []string{"links"}, 0, "upn:alice@example.com  root        2026-01-02", ""},
		{"links: linking off is said", "", []string{"links"}, 0, "Account linking is off", ""},
		{"link", "", []string{"link", "--user", "alice", subject}, 0, "Linked " + subject + " to alice.", ""},
		{"link bad identity", "", []string{"link", "--user", "alice", "alice@example.com"}, exitUsage, "", "must be upn:NAME, email:ADDRESS, cn:NAME or subject:DN"},
		{"link empty value", "", []string{"link", "--user", "alice", "email: "}, exitUsage, "", "must be upn:NAME"},
		{"link needs --user", "", []string{"link", "cn:Alice"}, exitUsage, "", `"user" not set`},
		{"unlink", "", []string{"unlink", "--user", "alice", subject}, 0, "Unlinked " + subject + " from alice.", ""},
		{"unlink again", "", []string{"unlink", "--user", "alice", subject}, exitNotFound, "", "no link"},
	})
	if !f.requested("DELETE /v1/users/alice/links/subject:CN=Alice%20Smith%2FO=Example%2C%20Inc.") {
		t.Errorf("identity not path-escaped as one segment: %q", f.state.paths)
	}
	f.mu.Lock()
	if f.state.linked != subject || len(f.state.links["alice"]) != 1 {
		t.Errorf("linked %q; links %+v", f.state.linked, f.state.links["alice"])
	}
	f.mu.Unlock()
	code, out, _ := hw("", "--json", "links", "--user", "alice")
	var ls ipc.LinksResponse
	if code != 0 || json.Unmarshal([]byte(out), &ls) != nil || ls.User != "alice" || len(ls.Links) != 1 || ls.Links[0].CreatedBy != "root" {
		t.Errorf("links --json: exit %d %s", code, out)
	}
}

func TestFIDOCommands(t *testing.T) {
	f, hw := setup(t)
	runCases(t, hw, []cliCase{
		{"info", "", []string{"fido", "info", "fido-1"}, 0, "Kind:     security-key", ""},
		{"info retries", "", []string{"fido", "info", "fido-1"}, 0, "PIN:      3 tries left", ""},
		{"info of a card", "", []string{"fido", "info", "piv-1"}, exitError, "", "piv-1 is a smartcard, not a security key"},
		{"info unknown", "", []string{"fido", "info", "fido-9"}, exitNotFound, "", "no authenticator"},
		{"pin set differs", "24680\n13579\n", []string{"fido", "pin", "set", "fido-1"}, exitError, "", "the two entries of the new PIN differ"},
		{"pin set", "24680\n24680\n", []string{"fido", "pin", "set", "fido-1"}, 0, "PIN set. (8 tries left)", ""},
		{"pin change", "123456\n654321\n654321\n", []string{"fido", "pin", "change", "fido-1"}, 0, "PIN changed.", ""},
		{"pin set not a terminal", "", []string{"fido", "pin", "set", "fido-1"}, exitUsage, "", "use --pin-stdin"},
		{"pin alone", "", []string{"fido", "pin"}, exitUsage, "", "fido pin needs a subcommand"},
	})
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.state.newPIN != "24680" || f.lastPIN != "123456" || f.lastNew != "654321" {
		t.Errorf("daemon got set %q, change %q -> %q", f.state.newPIN, f.lastPIN, f.lastNew)
	}
	sets := 0
	for _, p := range f.state.paths {
		if p == "POST /v1/authenticators/fido-1/pin/set" {
			sets++
		}
	}
	if sets != 1 {
		t.Errorf("pin set sent %d times; differing entries must not be sent", sets)
	}
}

func TestCertificatePEM(t *testing.T) {
	der := selfSigned(t)
	want := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	key := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})
	for name, in := range map[string][]byte{"DER": der, "PEM": []byte(want), "PEM after a key": append(key, want...)} {
		if got, err := certificatePEM(in); err != nil || got != want {
			t.Errorf("%s: %q, %v", name, got, err)
		}
	}
	for name, in := range map[string][]byte{"empty": nil, "key only": key, "text": []byte("hello")} {
		if _, err := certificatePEM(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzCertificatePEM(f *testing.F) {
	f.Add([]byte("-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\n"))
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	f.Add([]byte("-----BEGIN PUBLIC KEY-----\nAQ==\n-----END PUBLIC KEY-----\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := certificatePEM(b)
		if err != nil {
			return
		}
		blk, _ := pem.Decode([]byte(out))
		if blk == nil || blk.Type != "CERTIFICATE" {
			t.Fatalf("certificatePEM(%q) = %q, not a CERTIFICATE block", b, out)
		}
	})
}

// TestHelpWithoutDaemon checks that help needs no daemon and keeps cobra's
// template, which the man page generator reads, and that the completion
// command, hidden from help, still writes the scripts the package installs.
func TestHelpWithoutDaemon(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	for _, args := range [][]string{{"--help"}, {"vsc", "--help"}, {"fido", "pin", "set", "--help"}, {"unregister", "--help"}} {
		var out, errOut strings.Builder
		code := run(t.Context(), append([]string{"--socket", sock}, args...), strings.NewReader(""), &out, &errOut)
		if code != 0 || !strings.Contains(out.String(), "Usage:\n  hwauthctl ") || errOut.Len() != 0 {
			t.Errorf("%v: exit %d\n%s%s", args, code, out.String(), errOut.String())
		}
	}
	var out strings.Builder
	run(t.Context(), []string{"--socket", sock, "--help"}, strings.NewReader(""), &out, &out)
	for _, want := range []string{"register ", "unregister ", "signin ", "vsc ", "links ", "fido "} {
		if !strings.Contains(out.String(), "\n  "+want) {
			t.Errorf("--help lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "\n  completion ") {
		t.Error("--help lists cobra's completion command")
	}
	var script strings.Builder
	if code := run(t.Context(), []string{"completion", "bash"}, strings.NewReader(""), &script, &script); code != 0 || !strings.Contains(script.String(), "__start_hwauthctl") {
		t.Errorf("completion bash: exit %d\n%.200s", code, script.String())
	}
	code := run(t.Context(), []string{"--socket", sock, "registrations"}, strings.NewReader(""), &out, &out)
	if code != exitUnreachable {
		t.Errorf("registrations without a daemon: exit %d", code)
	}
}
