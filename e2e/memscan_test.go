package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// randomPIN is an 8-digit PIN that appears nowhere else.
func randomPIN(t testing.TB) string {
	n, err := rand.Int(rand.Reader, big.NewInt(90_000_000))
	if err != nil {
		t.Fatal(err)
	}
	return strconv.FormatInt(10_000_000+n.Int64(), 10)
}

// memoryHits scans every readable mapping of process pid (/proc/PID/maps,
// read through /proc/PID/mem) for each needle and describes where each copy
// lies.
func memoryHits(t testing.TB, pid int, needles ...[]byte) []string {
	t.Helper()
	maps, err := os.Open(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer maps.Close()
	mem, err := os.Open(fmt.Sprintf("/proc/%d/mem", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	var hits []string
	sc := bufio.NewScanner(maps)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 || f[1][0] != 'r' {
			continue
		}
		name := ""
		if len(f) > 5 {
			name = f[5]
		}
		if name == "[vvar]" || name == "[vsyscall]" || name == "[vvar_vclock]" {
			continue
		}
		var lo, hi uint64
		if _, err := fmt.Sscanf(f[0], "%x-%x", &lo, &hi); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, hi-lo)
		n, err := mem.ReadAt(buf, int64(lo))
		if err != nil && err != io.EOF && n == 0 {
			continue // a mapping the kernel will not read (guard pages)
		}
		buf = buf[:n]
		for i, needle := range needles {
			for off := 0; ; {
				j := bytes.Index(buf[off:], needle)
				if j < 0 {
					break
				}
				at := off + j
				ctx := buf[max(0, at-400):min(len(buf), at+len(needle)+16)]
				hits = append(hits, fmt.Sprintf("secret %d at %#x in %s %s: %q", i, lo+uint64(at), f[0], name, ctx))
				off = at + 1
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return hits
}

// TestNoPINLeftInDaemonMemory: after a batch of PIN requests to a PIV card
// and a TPM virtual card (verify, sign, registration, sign-in, PIN change,
// PUK unblock) and a few hundred other requests (which make the runtime
// collect garbage), no copy of any of their PINs and PUKs is left anywhere
// in the daemon's memory (issue #13, defect 6).
func TestNoPINLeftInDaemonMemory(t *testing.T) {
	testenv.RequireRoot(t)
	sw := testenv.SWTPM(t)
	h := startProcess(t, withTPM(sw))
	h.waitBackendUp("tpm")
	ctx := ctxT(t)

	pivPIN, pivPUK, vscPIN, vscPUK := randomPIN(t), randomPIN(t), randomPIN(t), randomPIN(t)
	card := h.insert(0, pivcard.Options{PIN: pivPIN, PUK: pivPUK})
	v, err := h.c.CreateVirtualSmartcard(ctx, ipc.VirtualSmartcardCreateRequest{
		Label: "scan", PIN: ipc.Secret(vscPIN), PUK: ipc.Secret(vscPUK),
	})
	if err != nil {
		t.Fatal(err)
	}
	h.waitPresent("the virtual card", func(id string) bool { return id == v.ID })

	for range 10 {
		for _, c := range []struct{ id, pin string }{{card.id, pivPIN}, {v.ID, vscPIN}} {
			if _, err := h.c.VerifyPIN(ctx, c.id, []byte(c.pin)); err != nil {
				t.Fatalf("verify %s: %v", c.id, err)
			}
			if _, err := h.c.Sign(ctx, c.id, ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(c.pin)}); err != nil {
				t.Fatalf("sign %s: %v", c.id, err)
			}
		}
	}
	// Every other route that carries a secret: registration and sign-in,
	// a PIN change and back, an unblock with the PUK.
	if _, err := h.c.Register(ctx, "root", ipc.RegisterRequest{Authenticator: card.id, PIN: ipc.Secret(pivPIN)}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := h.c.SignIn(ctx, ipc.SignInRequest{User: "root", PIN: ipc.Secret(pivPIN), Authenticator: card.id}); err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	newPIN := randomPIN(t)
	for _, c := range []struct{ id, pin, puk string }{{card.id, pivPIN, pivPUK}, {v.ID, vscPIN, vscPUK}} {
		if _, err := h.c.ChangePIN(ctx, c.id, []byte(c.pin), []byte(newPIN)); err != nil {
			t.Fatalf("change the PIN of %s: %v", c.id, err)
		}
		if _, err := h.c.UnblockPIN(ctx, c.id, []byte(c.puk), []byte(c.pin)); err != nil {
			t.Fatalf("unblock %s: %v", c.id, err)
		}
	}
	// The same PINs by the paths a raw client can take: pipelined, after
	// 100 Continue, padded past the body reader's first buffer, cut short,
	// sent to a path or method no route serves, over the body limit.
	for _, c := range []struct{ id, pin string }{{card.id, pivPIN}, {v.ID, vscPIN}} {
		rawPINRequests(t, h.socket, "/v1/authenticators/"+c.id+"/pin/verify", c.pin)
	}
	// Other requests, each on its own connection, keep the runtime
	// allocating and collecting.
	for range 300 {
		if err := rootStatus(h.socket); err != nil {
			t.Fatal(err)
		}
	}
	secrets := [][]byte{[]byte(pivPIN), []byte(vscPIN), []byte(pivPUK), []byte(vscPUK), []byte(newPIN)}
	if hits := memoryHits(t, h.proc.Pid, secrets...); len(hits) > 0 {
		t.Errorf("%d copies of the PINs and PUKs in the daemon's memory (secrets: PIV PIN, virtual card PIN, PIV PUK, virtual card PUK, changed PIN):\n%s", len(hits), strings.Join(hits, "\n"))
	}
}

// rawPINRequests sends pin to the verify route at path in every way a raw
// HTTP client can (each on its own connection, read to its end); the ones
// that reach the card carry the right PIN, so no try is spent.
func rawPINRequests(t *testing.T, socket, path, pin string) {
	t.Helper()
	body := `{"pin":"` + pin + `"}`
	req := func(method, path, body string, extra string) string {
		return fmt.Sprintf("%s %s HTTP/1.1\r\nHost: hwauthd\r\n%sContent-Length: %d\r\n\r\n%s", method, path, extra, len(body), body)
	}
	const closeHdr = "Connection: close\r\n"
	padded := `{"pin":"` + pin + `"` + strings.Repeat(" ", 3000) + "}"
	for _, tc := range []struct {
		text string
		cut  bool // the client ends its side before the body's end
	}{
		{text: req("POST", path, body, "") + req("POST", path, body, "") + req("POST", path, body, closeHdr)},
		{text: req("POST", path, padded, closeHdr)},
		{text: req("POST", path, body, "Expect: 100-continue\r\n"+closeHdr)},
		{text: strings.Replace(req("POST", path, body, ""), "Content-Length: ", "Content-Length: 1", 1), cut: true},
		{text: req("POST", path, `{"pin":"`+pin, closeHdr)},
		{text: req("POST", "/v1/no-such-route", body, "")},
		{text: req("PUT", path, body, "")},
		{text: req("POST", path, `{"pin":"`+pin+`","x":"`+strings.Repeat("x", 70000)+`"}`, closeHdr)},
	} {
		c, err := net.Dial("unix", socket)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		go func() {
			_, _ = io.WriteString(c, tc.text)
			if tc.cut {
				_ = c.(*net.UnixConn).CloseWrite()
			}
		}()
		answers, err := io.ReadAll(c)
		c.Close()
		if err != nil || !bytes.HasPrefix(answers, []byte("HTTP/1.1 ")) {
			t.Fatalf("%.80q: %v, answered %q", tc.text, err, answers)
		}
	}
}
