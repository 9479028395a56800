package e2e

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pkcs11"
)

// otherApp is another application's shared connection to the card in
// reader i, as OpenSC or yubico-piv-tool would hold one.
func otherApp(t *testing.T, h *harness, i int) (*pcsc.Card, *piv.Client) {
	t.Helper()
	conn, err := pcsc.Connect(ctxT(t), h.pcsc.ReaderName(i))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cl := piv.NewClient(conn)
	if _, err := cl.Select(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	return conn, cl
}

// TestSignNeedsThePINOfTheSameRequest: another application logs the card in;
// a sign request without a PIN still answers pin_required, and one with the
// PIN signs and leaves the other application's login in place. When
// hwauthd's own verification is the only one, it logs the card out.
func TestSignNeedsThePINOfTheSameRequest(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	_, other := otherApp(t, h, 0)
	if err := other.VerifyPIN(ctxT(t), []byte(pivcard.DefaultPIN)); err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("no PIN"))
	if _, err := h.c.Sign(ctxT(t), c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: d[:]}); apiCode(err) != ipc.CodePINRequired {
		t.Fatalf("sign without PIN on a card another application logged in: %v, want pin_required", err)
	}
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	if st, err := other.PINStatus(ctxT(t)); err != nil || !st.Verified {
		t.Errorf("the other application's login after hwauthd signed: %+v, %v; want it kept", st, err)
	}
	if err := other.Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	if st, err := other.PINStatus(ctxT(t)); err != nil || st.Verified || st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Errorf("PIN status after hwauthd verified and signed: %+v, %v; want logged out, 3 tries", st, err)
	}
}

// TestResetByAnotherApplication: yubico-piv-tool disconnects with a reset;
// hwauthd's next request selects the application again and succeeds.
func TestResetByAnotherApplication(t *testing.T) {
	testenv.RequireBinaries(t, "yubico-piv-tool")
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		out, err := h.pcsc.Command(ctxT(t), "yubico-piv-tool", "-r", "Test PCD", "-a", "status").CombinedOutput()
		if err != nil {
			t.Fatalf("yubico-piv-tool: %v\n%s", err, out)
		}
		if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
			t.Fatalf("sign %d after yubico-piv-tool reset the card: %v", i, err)
		}
	}
	// A reset through another connection, then a PIN state read: no busy.
	conn, _ := otherApp(t, h, 0)
	if err := conn.Reset(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st, err := h.c.Authenticator(ctxT(t), c.id); err != nil || st.PIN.RetriesLeft != hwerr.TriesLeft(3) {
		t.Fatalf("authenticator after a reset: %+v, %v", st, err)
	}
}

// TestListShowsTriesTheCardReports: another application spends a try;
// the list shows what the card reports, not what hwauthd saw last.
func TestListShowsTriesTheCardReports(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	_, other := otherApp(t, h, 0)
	if err := other.VerifyPIN(ctxT(t), []byte("999999")); err == nil {
		t.Fatal("wrong PIN accepted")
	}
	as, err := h.c.Authenticators(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range as {
		if a.ID == c.id && a.PIN.RetriesLeft != hwerr.TriesLeft(2) {
			t.Errorf("listed PIN state %+v, want the 2 tries the card reports", a.PIN)
		}
	}
}

// TestIdleConnectionReleased: after its idle time hwauthd holds no
// connection to the card, so another application can take it exclusively
// (and pcscd could power it down).
func TestIdleConnectionReleased(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	sctx, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer sctx.Release()
	// pcscd offers no event for another application's connection ending:
	// poll, bounded by the deadline.
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		conn, err := sctx.Connect(h.pcsc.ReaderName(0), scard.ShareExclusive, scard.ProtocolAny)
		if err == nil {
			conn.Disconnect(scard.LeaveCard)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no exclusive connection within %v of the last request: %v", waitTimeout, err)
		}
		<-tick.C
	}
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatalf("sign after the connection was released: %v", err)
	}
}

// TestThreeApplicationsSignInParallel: hwauthd, OpenSC's pkcs11-tool and
// yubico-piv-tool sign on one card in parallel bounded loops; every
// operation of each succeeds and every signature verifies.
func TestThreeApplicationsSignInParallel(t *testing.T) {
	testenv.RequireBinaries(t, "pkcs11-tool", "yubico-piv-tool")
	testenv.RequireFiles(t, pkcs11.OpenSCModule)
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	cert, err := x509.ParseCertificate(c.Certificate(piv.SlotAuthentication))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certPath, in := filepath.Join(dir, "9a.pem"), filepath.Join(dir, "digest")
	digest := sha256.Sum256([]byte("three applications"))
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(in, digest[:], 0o600); err != nil {
		t.Fatal(err)
	}
	const rounds = 10
	// hwauthd signs for as long as the other two run (at most maxDaemon
	// times), so that its requests fall between their commands.
	const maxDaemon = 2000
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds+maxDaemon)
	othersDone := make(chan struct{})
	daemonRounds := 0
	var daemon sync.WaitGroup
	daemon.Go(func() {
		for ; daemonRounds < maxDaemon; daemonRounds++ {
			select {
			case <-othersDone:
				return
			default:
			}
			if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
				errs <- fmt.Errorf("hwauthd round %d: %w", daemonRounds, err)
			}
		}
	})
	wg.Go(func() {
		for i := range rounds {
			sig := filepath.Join(dir, fmt.Sprintf("p11-%d", i))
			out, err := h.pcsc.Command(ctx, "pkcs11-tool", "--module", pkcs11.OpenSCModule, "--login", "--pin", pivcard.DefaultPIN,
				"--sign", "--mechanism", "ECDSA", "--id", "01", "--input-file", in, "--output-file", sig, "--signature-format", "openssl").CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("pkcs11-tool round %d: %v\n%s", i, err, out)
				continue
			}
			if raw, err := os.ReadFile(sig); err != nil || !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], raw) {
				errs <- fmt.Errorf("pkcs11-tool round %d: signature does not verify (%v)", i, err)
			}
		}
	})
	wg.Go(func() {
		for i := range rounds {
			out, err := h.pcsc.Command(ctx, "yubico-piv-tool", "-r", "Test PCD", "-a", "verify-pin", "-P", pivcard.DefaultPIN,
				"-a", "test-signature", "-s", "9a", "-i", certPath).CombinedOutput()
			if err != nil {
				errs <- fmt.Errorf("yubico-piv-tool round %d: %v\n%s", i, err, out)
			}
		}
	})
	wg.Wait()
	close(othersDone)
	daemon.Wait()
	close(errs)
	t.Logf("hwauthd signed %d times meanwhile", daemonRounds)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		t.Fatal(strings.TrimSpace(err.Error()))
	}
	// The other applications leave the card logged in; log it out to read
	// the counter.
	if err := piv.NewClient(pivcard.Transmitter(c.Card)).Logout(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if st := cardPIN(t, c); st.RetriesLeft != hwerr.TriesLeft(3) {
		t.Errorf("PIN counter after the loops: %+v, want 3 tries", st)
	}
}

// TestCertificateWrittenByAnotherApplication: yubico-piv-tool generates a
// new key in 9A and writes its certificate while hwauthd serves the card.
// hwauthd shows the new certificate, not the one it read at insertion, and
// signs with the new key.
func TestCertificateWrittenByAnotherApplication(t *testing.T) {
	testenv.RequireBinaries(t, "yubico-piv-tool")
	h := start(t)
	c := h.insert(0, pivcard.Options{})
	before := c.Certificate(piv.SlotAuthentication)
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	pub, cert := filepath.Join(dir, "pub.pem"), filepath.Join(dir, "cert.pem")
	yubicoPIVTool := func(args ...string) {
		t.Helper()
		out, err := h.pcsc.Command(ctxT(t), "yubico-piv-tool", append([]string{"-r", "Test PCD"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("yubico-piv-tool %v: %v\n%s", args, err, out)
		}
	}
	yubicoPIVTool("-a", "generate", "-s", "9a", "-A", "ECCP256", "-o", pub)
	if err := os.WriteFile(cert, issueFor(t, pub, "rewritten"), 0o600); err != nil {
		t.Fatal(err)
	}
	yubicoPIVTool("-a", "import-certificate", "-s", "9a", "-i", cert)
	after := c.Certificate(piv.SlotAuthentication)
	if bytes.Equal(after, before) {
		t.Fatal("yubico-piv-tool left the certificate as it was")
	}
	a, err := h.c.Authenticator(ctxT(t), c.id)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Keys) == 0 || a.Keys[0].ID != "9a" || a.Keys[0].Certificate != string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: after})) || a.Label != "rewritten" {
		t.Errorf("after the certificate changed hwauthd shows %q with 9A's certificate\n%s", a.Label, a.Keys[0].Certificate)
	}
	if err := signAndVerify(t, h, c, piv.SlotAuthentication, "ecdsa-sha256"); err != nil {
		t.Fatalf("sign with the new key: %v", err)
	}
}

// issueFor issues a certificate with common name cn for the public key in
// the PEM file pubFile, from a throwaway CA, and returns it in PEM.
func issueFor(t *testing.T, pubFile, cn string) []byte {
	t.Helper()
	b, err := os.ReadFile(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s holds no PEM: %s", pubFile, b)
	}
	pub, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(issue(t, pub, cn))
}
