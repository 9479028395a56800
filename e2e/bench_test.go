package e2e

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"crypto"
	crand "crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport/tcp"
	p11 "github.com/miekg/pkcs11"
	"golang.org/x/sys/unix"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/internal/testenv"
	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc"
	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/store/boltstore"
	"github.com/hwauthd/hwauthd/store/storetest"
)

// The benchmarks run hwauthd as its own process (the built binary, as it
// runs for real) and measure each path through it against the direct path
// on the same kind of emulated hardware, in interleaved rounds (see
// benchstats_test.go). They run once each (-benchtime 1x) and print a table
// row per comparison; scripts/bench.sh runs them all and docs/performance.md
// shows a run.

var benchDigest = func() []byte { d := sha256.Sum256([]byte("bench")); return d[:] }()

// insertCardProcess runs the emulated PIV card (pcsc/pcsctest/pivcard) as its own
// process in vpcd reader i and, when the harness's daemon runs, waits until
// the daemon announces it and returns its authenticator id.
func (h *harness) insertCardProcess(i int) string {
	h.t.Helper()
	cmd := h.pcsc.NetnsCommand(context.Background(), buildProgram(h.t, "pcsc/pcsctest/pivcard"), "--vpcd", h.pcsc.VPCDAddr(i))
	if err := cmd.Start(); err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() })
	reader := h.pcsc.ReaderName(i)
	return h.waitFor("card-inserted in "+reader, func(e ipc.Event) bool {
		return e.Type == ipc.EventCardInserted && e.Reader == reader
	}).Authenticator
}

// BenchmarkPIVSign: PIN + ECDSA P-256 signature through hwauthd's socket
// (client, HTTP, access check, PC/SC transaction, logout) against the same
// three APDUs (VERIFY, GENERAL AUTHENTICATE, logout) in one PC/SC
// transaction straight from this process, and against the same four APDUs
// hwauthd sends (it first reads the PIN status with an empty VERIFY, which
// also shows the PIV application is still selected and whether another
// application's login must be left alone); each card runs in its own
// process. Then the same 4 APDUs against hwauthd one signature at a time,
// each after signPause of idleness.
func BenchmarkPIVSign(b *testing.B) {
	h := startProcess(b)
	id := h.insertCardProcess(0)
	h.insertCardProcess(1)
	card, cl := connectWhenPresent(b, h.pcsc.ReaderName(1))
	defer card.Close()
	ctx := b.Context()
	req := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(pivcard.DefaultPIN)}
	var cert *x509.Certificate
	err := card.Transaction(ctx, func() (err error) {
		cert, err = cl.Certificate(ctx, piv.SlotAuthentication)
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	key := cl.PrivateKey(piv.SlotAuthentication, cert.PublicKey)
	direct := func(checkFirst bool) func() error {
		return func() error {
			return card.Transaction(ctx, func() error {
				if checkFirst {
					if _, err := cl.PINStatus(ctx); err != nil {
						return err
					}
				}
				if err := cl.VerifyPIN(ctx, []byte(pivcard.DefaultPIN)); err != nil {
					return err
				}
				if _, err := key.SignContext(ctx, crand.Reader, benchDigest, crypto.SHA256); err != nil {
					return err
				}
				return cl.Logout(ctx)
			})
		}
	}
	q := measure(b, []timedPath{
		{"hwauthd", 100, func() error { _, err := h.c.Sign(ctx, id, req); return err }},
		{"PC/SC", 100, direct(false)},
		{"PC/SC+check", 100, direct(true)},
	})
	printRatio("PIV sign P-256+PIN: hwauthd / PC/SC direct", q[0], q[1], "≤ 1.10x")
	printRatio("  same 4 APDUs direct (empty VERIFY first)", q[0], q[2], "(hwauthd's own cost)")
	// Back to back, the processes stay busy between signatures; sign-ins
	// come one at a time, to a daemon (and a pcscd, a card) gone idle.
	q = measurePaced(b, signPause, []timedPath{
		{"hwauthd", 30, func() error { _, err := h.c.Sign(ctx, id, req); return err }},
		{"PC/SC+check", 30, direct(true)},
	})
	printRatio(fmt.Sprintf("  one at a time (%v apart), same 4 APDUs", signPause), q[0], q[1], "(hwauthd's own cost)")
}

// signPause is the idle time before each signature of the one-at-a-time
// comparison.
const signPause = 5 * time.Millisecond

// connectWhenPresent connects to the PIV card in reader once pcscd sees it,
// waiting on a Monitor's events; a card pcscd still lists from an earlier
// test, which fails to select, is passed over until the next insertion.
func connectWhenPresent(b *testing.B, reader string) (*pcsc.Card, *piv.Client) {
	ctx, cancel := context.WithTimeout(b.Context(), waitTimeout)
	defer cancel()
	events := make(chan pcsc.Event, 16)
	m := pcsc.NewMonitor(testLogger(b))
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx, events) }()
	defer func() { cancel(); <-done }()
	for {
		select {
		case e := <-events:
			if e.Type != pcsc.CardInserted || e.Reader != reader {
				continue
			}
			card, err := pcsc.Connect(ctx, reader)
			if err != nil {
				continue
			}
			cl := piv.NewClient(card)
			if err := card.Transaction(ctx, func() error { _, err := cl.Select(ctx); return err }); err != nil {
				card.Close()
				continue
			}
			return card, cl
		case <-ctx.Done():
			b.Fatalf("card not seen in %s", reader)
		}
	}
}

// BenchmarkVSCSign: PIN-checked ECDSA P-256 signature with a TPM virtual
// card through hwauthd, against a lone TPM2_Sign through go-tpm (key
// loaded, PIN as its authValue in an HMAC session) and against tpm2-pkcs11's
// C_Login, C_SignInit, C_Sign, C_Logout. Each path has its own swtpm of the
// same build (swtpm serves one connection at a time).
func BenchmarkVSCSign(b *testing.B) {
	h := startProcess(b, withTPM(testenv.SWTPM(b)))
	h.waitBackendUp("tpm")
	v := h.createVSC("bench", false, nil)
	ctx := b.Context()
	req := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(vscPIN)}
	lone := loneTPMSigner(b, testenv.SWTPM(b), []byte(vscPIN))
	tok := openTPM2PKCS11Token(b, testenv.SWTPM(b), vscPIN)
	q := measure(b, []timedPath{
		{"hwauthd", 50, func() error { _, err := h.c.Sign(ctx, v.ID, req); return err }},
		{"TPM2_Sign", 50, lone},
		{"tpm2-pkcs11", 20, tok},
	})
	printRatio("virtual card sign+PIN: hwauthd / lone TPM2_Sign", q[0], q[1], "≤ 2x")
	printRatio("virtual card sign+PIN: tpm2-pkcs11 / hwauthd", q[2], q[0], "≥ 10x")
}

// BenchmarkVSCTwoCards: PIN-checked signatures through hwauthd with two
// virtual cards on one TPM signing in turn (A, B, A, B, ...), and with five
// (more than the TPM's object slots hold), against one card signing again
// and again, on the same daemon and swtpm: what a switch between cards
// costs in the TPM's few object slots.
func BenchmarkVSCTwoCards(b *testing.B) {
	h := startProcess(b, withTPM(testenv.SWTPM(b)))
	h.waitBackendUp("tpm")
	cards := make([]*ipc.VirtualSmartcard, 5)
	for i := range cards {
		cards[i] = h.createVSC(fmt.Sprintf("bench %d", i), false, nil)
	}
	ctx := b.Context()
	req := ipc.SignRequest{Key: "9a", Algorithm: "ecdsa-sha256", Digest: benchDigest, PIN: ipc.Secret(vscPIN)}
	inTurn := func(n int) func() error {
		next := 0
		return func() error {
			next = (next + 1) % n
			_, err := h.c.Sign(ctx, cards[next].ID, req)
			return err
		}
	}
	q := measure(b, []timedPath{
		{"two cards", 50, inTurn(2)},
		{"one card", 50, func() error { _, err := h.c.Sign(ctx, cards[0].ID, req); return err }},
		{"five cards", 50, inTurn(5)},
	})
	printRatio("virtual cards: two alternating / one repeating", q[0], q[1], "≤ 1.10x")
	printRatio("virtual cards: five in turn / one repeating", q[2], q[1], "(a context load per switch)")
}

// loneTPMSigner creates an ECC P-256 signing primary with authValue pin on
// the swtpm and returns one TPM2_Sign with it, authorized by an HMAC session.
func loneTPMSigner(b *testing.B, sw *testenv.SWTPMInstance, pin []byte) func() error {
	tr, err := tcp.Open(tcp.Config{CommandAddress: sw.Addr(), PlatformAddress: sw.PlatformAddr()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	key, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InSensitive:   tpm2.TPM2BSensitiveCreate{Sensitive: &tpm2.TPMSSensitiveCreate{UserAuth: tpm2.TPM2BAuth{Buffer: pin}}},
		InPublic: tpm2.New2B(tpm2.TPMTPublic{
			Type: tpm2.TPMAlgECC, NameAlg: tpm2.TPMAlgSHA256,
			ObjectAttributes: tpm2.TPMAObject{FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true, SignEncrypt: true},
			Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgECC, &tpm2.TPMSECCParms{
				Symmetric: tpm2.TPMTSymDefObject{Algorithm: tpm2.TPMAlgNull},
				Scheme:    tpm2.TPMTECCScheme{Scheme: tpm2.TPMAlgNull},
				CurveID:   tpm2.TPMECCNistP256,
				KDF:       tpm2.TPMTKDFScheme{Scheme: tpm2.TPMAlgNull},
			}),
			Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgECC, &tpm2.TPMSECCPoint{}),
		}),
	}.Execute(tr)
	if err != nil {
		b.Fatalf("CreatePrimary: %v", err)
	}
	scheme := tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgECDSA, Details: tpm2.NewTPMUSigScheme(tpm2.TPMAlgECDSA, &tpm2.TPMSSchemeHash{HashAlg: tpm2.TPMAlgSHA256})}
	return func() error {
		for {
			_, err := tpm2.Sign{
				KeyHandle:  tpm2.AuthHandle{Handle: key.ObjectHandle, Name: key.Name, Auth: tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(pin))},
				Digest:     tpm2.TPM2BDigest{Buffer: benchDigest},
				InScheme:   scheme,
				Validation: tpm2.TPMTTKHashCheck{Tag: tpm2.TPMSTHashCheck, Hierarchy: tpm2.TPMRHNull},
			}.Execute(tr)
			// swtpm may answer the first ECDSA sign with TPM_RC_RETRY,
			// which asks the caller to send the command again.
			if !errors.Is(err, tpm2.TPMRCRetry) {
				return err
			}
		}
	}
}

// openTPM2PKCS11Token provisions tpm2-pkcs11 on the swtpm, loads it in this
// process and returns one PIN-checked signature through it (C_Login,
// C_SignInit, C_Sign, C_Logout on an open session).
func openTPM2PKCS11Token(b *testing.B, sw *testenv.SWTPMInstance, pin string) func() error {
	module, _, env := testenv.TPM2PKCS11(b, sw, pin)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		b.Setenv(k, v)
	}
	ctx, sh := openP11Session(b, module, testenv.TPM2PKCS11Token)
	if err := ctx.Login(sh, p11.CKU_USER, pin); err != nil {
		b.Fatalf("C_Login: %v", err)
	}
	if err := ctx.FindObjectsInit(sh, []*p11.Attribute{p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY)}); err != nil {
		b.Fatal(err)
	}
	objs, _, err := ctx.FindObjects(sh, 1)
	_ = ctx.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		b.Fatalf("find the tpm2-pkcs11 key: %d, %v", len(objs), err)
	}
	if err := ctx.Logout(sh); err != nil {
		b.Fatal(err)
	}
	mech := []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}
	return func() error {
		if err := ctx.Login(sh, p11.CKU_USER, pin); err != nil {
			return err
		}
		if err := ctx.SignInit(sh, mech, objs[0]); err != nil {
			return err
		}
		if _, err := ctx.Sign(sh, benchDigest); err != nil {
			return err
		}
		return ctx.Logout(sh)
	}
}

// openP11Session loads module in this process and opens a session on the
// token labelled label; both end with the benchmark.
func openP11Session(b *testing.B, module, label string) (*p11.Ctx, p11.SessionHandle) {
	b.Helper()
	ctx := p11.New(module)
	if ctx == nil {
		b.Fatalf("cannot load %s", module)
	}
	if err := ctx.Initialize(); err != nil {
		ctx.Destroy()
		b.Fatalf("C_Initialize %s: %v", module, err)
	}
	b.Cleanup(func() { _ = ctx.Finalize(); ctx.Destroy() })
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	for _, s := range slots {
		if ti, err := ctx.GetTokenInfo(s); err == nil && strings.TrimRight(ti.Label, " \x00") == label {
			sh, err := ctx.OpenSession(s, p11.CKF_SERIAL_SESSION)
			if err != nil {
				b.Fatalf("C_OpenSession: %v", err)
			}
			b.Cleanup(func() { _ = ctx.CloseSession(sh) })
			return ctx, sh
		}
	}
	b.Fatalf("%s: no token labelled %q in %d slots", module, label, len(slots))
	return nil, 0
}

// p11KitClient is p11-kit's client module, which forwards every call to a
// p11-kit server.
const p11KitClient = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"

// BenchmarkStatusHop: GET /v1/status with the project's Go client against
// what the p11-kit server's remoting adds to one PKCS#11 call on SoftHSM2
// (C_GetSessionInfo through p11-kit-client.so minus the same call on the
// module loaded in this process), the established way of putting a token
// behind a process boundary; and the project's client against net/http's
// client (as a generic HTTP program would call the daemon).
func BenchmarkStatusHop(b *testing.B) {
	testenv.RequireBinaries(b, "p11-kit")
	testenv.RequireFiles(b, p11KitClient)
	h := startProcess(b)
	hsm := testenv.SoftHSM(b)
	hsm.InitToken("hop", "123456", "12345678")
	sock := filepath.Join(b.TempDir(), "p11-kit.sock")
	cmd := exec.Command("p11-kit", "server", "-f", "-s", "-n", sock, "--provider", hsm.Module(), "pkcs11:token=hop")
	cmd.Env = hsm.Env()
	// The server prints its address once it listens.
	if line := startReadingFirstLine(b, cmd); !strings.HasPrefix(line, "P11_KIT_SERVER_ADDRESS=") {
		b.Fatalf("p11-kit server: %q", line)
	}
	b.Setenv("P11_KIT_SERVER_ADDRESS", "unix:path="+sock)
	b.Setenv("SOFTHSM2_CONF", hsm.Conf())
	direct, dsh := openP11Session(b, hsm.Module(), "hop")
	remote, rsh := openP11Session(b, p11KitClient, "hop")
	ctx := b.Context()
	std := unixHTTP(h.socket)
	// The floor: the request's bytes and an answer as long as the daemon's,
	// exchanged with an echo process.
	req := []byte("GET /v1/status HTTP/1.1\r\nHost: hwauthd\r\n\r\n") // as the Go client writes it
	answer := rawAnswer(b, h.socket, req)
	echo, buf := dialEcho(b, startEcho(b, answer)), make([]byte, len(answer))
	q := measure(b, []timedPath{
		{"status", 500, func() error { _, err := h.c.Status(ctx); return err }},
		{"p11-kit", 500, func() error { _, err := remote.GetSessionInfo(rsh); return err }},
		{"direct", 500, func() error { _, err := direct.GetSessionInfo(dsh); return err }},
		{"net/http", 500, func() error {
			status, _, err := do(std, "GET", "/v1/status", "")
			if err == nil && status != http.StatusOK {
				err = fmt.Errorf("status %d", status)
			}
			return err
		}},
		{"echo", 500, func() error { return echo.exchange(req, buf) }},
	})
	hop := make([]quantiles, len(q[1]))
	for i := range hop {
		hop[i] = quantiles{q[1][i].p50 - q[2][i].p50, q[1][i].p90 - q[2][i].p90}
	}
	printRatio("GET /v1/status (Go client) / p11-kit server's hop", q[0], hop, "≤ 0.33x, ≤ 30 µs p50")
	printRatio("GET /v1/status: Go client / net/http's client", q[0], q[3], "(the client's share)")
	printRatio("GET /v1/status (Go client) / echo of its bytes", q[0], q[4], "(floor: the socket, two Go processes)")
}

// rawAnswer sends req to the daemon on a connection of its own and returns
// the whole answer, head and body, as the daemon wrote it.
func rawAnswer(b *testing.B, socket string, req []byte) []byte {
	b.Helper()
	c, err := net.Dial("unix", socket)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(req); err != nil {
		b.Fatal(err)
	}
	var raw bytes.Buffer // what came, as it came: one answer and no more
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(c, &raw)), nil)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || len(body) == 0 || !bytes.HasSuffix(raw.Bytes(), body) {
		b.Fatalf("status: %d, %d bytes, %v", resp.StatusCode, len(body), err)
	}
	return raw.Bytes()
}

// BenchmarkRegistry: hwauthd with a registry of 100,000 and of 1,000,000
// users (one registration each, plus the machine's accounts from
// /etc/passwd with one to five): from the process's start to its first
// answer from the registry, with the file's pages dropped from the page
// cache first (a cold start); then the p50 and p99 of listing an account's
// registrations through the API, and the daemon's anonymous memory
// (RssAnon) with the store's mapped file pages (RssFile) beside it. A
// third pass right after the warm one is the floor: exchanges of the same
// bytes with a bare echo process. Each pass reports the CPU time the host
// stole from the machine meanwhile: on a virtual machine a lookup is no
// faster than its vCPUs are given to it. The
// registries are built once and kept under $BENCH_CACHE (default
// /var/tmp/hwauthd-bench), as a long-running machine keeps its registry.
func BenchmarkRegistry(b *testing.B) {
	for _, users := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprint(users), func(b *testing.B) {
			dir, accounts := benchRegistry(b, users)
			h := newHarness(b, func(c *config.Config) { c.Daemon.StateDir = dir })
			dropPageCache(b, filepath.Join(dir, "hwauthd.db"))
			started := h.spawn()
			for {
				_, err := h.c.Registrations(b.Context(), accounts[0])
				if err == nil {
					break
				}
				if apiCode(err) != "" || time.Since(started) > 5*time.Minute {
					b.Fatalf("first answer: %v", err)
				}
				time.Sleep(time.Millisecond) // polling the starting daemon; the resolution of the measurement
			}
			first := time.Since(started)
			// The first pass follows the cold start (the file's pages come
			// from the disk as they are needed); the second finds them cached.
			// firsts are each account's first lookup in the pass.
			lookups := func() (samples, firsts []time.Duration) {
				samples = make([]time.Duration, 2000*benchScale/100)
				seen := map[string]bool{}
				for i := range samples {
					user := accounts[rand.IntN(len(accounts))]
					t0 := time.Now()
					if _, err := h.c.Registrations(b.Context(), user); err != nil {
						b.Fatalf("registrations of %s: %v", user, err)
					}
					samples[i] = time.Since(t0)
					if !seen[user] {
						seen[user] = true
						firsts = append(firsts, samples[i])
					}
				}
				return samples, firsts
			}
			// The floor, right after the warm pass: the request's bytes and the
			// answer for the first account exchanged with a bare echo process,
			// back to back, as many times as a pass has lookups.
			req := []byte("GET /v1/users/" + accounts[0] + "/registrations HTTP/1.1\r\nHost: hwauthd\r\n\r\n") // as the Go client writes it
			answer := rawAnswer(b, h.socket, req)
			echo, buf := dialEcho(b, startEcho(b, answer)), make([]byte, len(answer))
			echoes := func() []time.Duration {
				samples := make([]time.Duration, 2000*benchScale/100)
				for i := range samples {
					t0 := time.Now()
					if err := echo.exchange(req, buf); err != nil {
						b.Fatalf("echo: %v", err)
					}
					samples[i] = time.Since(t0)
				}
				return samples
			}
			// passes[i] is the CPU time the host stole during pass i and the
			// pass's duration.
			var passes [3]struct{ stolen, took time.Duration }
			pass := func(i int, run func()) {
				stolen, t0 := stolenCPU(b), time.Now()
				run()
				passes[i].took, passes[i].stolen = time.Since(t0), stolenCPU(b)-stolen
			}
			faults, read := diskReads(b, h.proc.Pid)
			var cold, firsts, warm, floor []time.Duration
			pass(0, func() { cold, firsts = lookups() })
			p50, p99 := percentile(cold, 50), percentile(cold, 99)
			faults2, read2 := diskReads(b, h.proc.Pid)
			mem := procStatus(b, h.proc.Pid)
			pass(1, func() { warm, _ = lookups() })
			pass(2, func() { floor = echoes() })
			label := fmt.Sprintf("registry %d users: ", users)
			printValue(label+"start to first answer (cold)", dur(first), "≤ 1 s")
			printValue(label+"lookup p50 / p99 after cold start", dur(p50)+" / "+dur(p99), "p99 ≤ 1 ms")
			printValue(label+"  each account's first: p50 / max", dur(percentile(firsts, 50))+" / "+dur(percentile(firsts, 100)),
				fmt.Sprintf("(%d of the %d lookups)", len(firsts), len(cold)))
			printValue(label+"  file pages read meanwhile", fmt.Sprintf("%d faults, %d KiB", faults2-faults, (read2-read)>>10),
				"(4 KiB a fault means no readahead)")
			printValue(label+"lookup p50 / p99 warm", dur(percentile(warm, 50))+" / "+dur(percentile(warm, 99)), "p99 ≤ 1 ms")
			printValue(label+"  floor: echo of its bytes p50 / p99", dur(percentile(floor, 50))+" / "+dur(percentile(floor, 99)),
				"(the socket, two Go processes, right after)")
			printValue(label+"  CPU stolen by the host in each pass", fmt.Sprintf("%d/%d/%d of %d/%d/%d ms",
				passes[0].stolen.Milliseconds(), passes[1].stolen.Milliseconds(), passes[2].stolen.Milliseconds(),
				passes[0].took.Milliseconds(), passes[1].took.Milliseconds(), passes[2].took.Milliseconds()),
				"(cold/warm/floor; steal time of all vCPUs)")
			printValue(label+"RssAnon (RssFile)", fmt.Sprintf("%d MB (%d MB)", mem["RssAnon"]>>10, mem["RssFile"]>>10), "RssAnon ≤ 64 MB")
			b.ReportMetric(first.Seconds(), "s-to-first-answer")
			b.ReportMetric(float64(p99.Microseconds()), "µs-p99")
			b.ReportMetric(float64(mem["RssAnon"]>>10), "MB-RssAnon")
		})
	}
}

// BenchmarkIdle: hwauthd with the PC/SC backend and a card inserted, left
// alone for BENCH_IDLE seconds (default 30) from 12 s after it read the
// card: how often its threads were woken (context switches over all its
// threads) and its memory. The first 12 s are reported on their own row,
// so that what the window leaves out is seen. An event stream stays open
// throughout, as a desktop session's agent keeps one.
func BenchmarkIdle(b *testing.B) {
	h := startProcess(b)
	stream, err := h.c.Events(b.Context(), 0)
	if err != nil {
		b.Fatal(err)
	}
	defer stream.Close()
	go func() {
		for {
			if _, err := stream.Next(); err != nil {
				return
			}
		}
	}()
	h.insertCardProcess(0)
	if _, err := h.c.Status(b.Context()); err != nil {
		b.Fatal(err)
	}
	idle := time.Duration(envInt("BENCH_IDLE", 30)) * time.Second
	// The measured period starts once the daemon has settled: it lets go of
	// a card's connection 2 s after its last use, and the Go runtime does
	// some housekeeping (scavenging, a GOMAXPROCS check) about 8-10 s after
	// the start, once.
	const settle = 12 * time.Second
	start := contextSwitches(b, h.proc.Pid)
	time.Sleep(settle) // the settling period, reported on its own row
	before := contextSwitches(b, h.proc.Pid)
	time.Sleep(idle) // the idle period being measured
	wakeups := contextSwitches(b, h.proc.Pid) - before
	mem := procStatus(b, h.proc.Pid)
	printValue(fmt.Sprintf("idle: wakeups in the %s after the card was read", settle), fmt.Sprint(before-start), "(settling, not counted)")
	printValue(fmt.Sprintf("idle %s from %s after, a stream open: wakeups, VmRSS (RssAnon)", idle, settle), fmt.Sprintf("%d, %d MB (%d MB)", wakeups, mem["VmRSS"]>>10, mem["RssAnon"]>>10), "0 wakeups")
	b.ReportMetric(float64(wakeups), "wakeups")
}

// procStatus reads the kB fields of /proc/PID/status.
func procStatus(b testing.TB, pid int) map[string]int64 {
	text, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	out := map[string]int64{}
	for line := range strings.Lines(string(text)) {
		var kb int64
		k, v, _ := strings.Cut(line, ":")
		if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err == nil {
			out[k] = kb
		}
	}
	return out
}

// diskReads returns the process's major page faults and the bytes it
// caused to be read from storage (/proc/PID/stat and /proc/PID/io).
func diskReads(b *testing.B, pid int) (faults, read int64) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's closing parenthesis: state is the 3rd
	// field of the line, majflt the 12th.
	fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
	if len(fields) < 10 {
		b.Fatalf("/proc/%d/stat: %q", pid, stat)
	}
	faults, err = strconv.ParseInt(fields[9], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	io, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(io)) {
		if v, ok := strings.CutPrefix(line, "read_bytes: "); ok {
			read, err = strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	return faults, read
}

// stolenCPU returns the machine's steal time so far, summed over its CPUs
// (/proc/stat, in USER_HZ ticks of 10 ms): time a virtual machine's vCPUs
// were ready to run but the host ran something else.
func stolenCPU(b *testing.B) time.Duration {
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(stat), "\n")
	// cpu user nice system idle iowait irq softirq steal ...
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		b.Fatalf("/proc/stat: %q", line)
	}
	ticks, err := strconv.ParseInt(fields[8], 10, 64)
	if err != nil {
		b.Fatal(err)
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// contextSwitches sums the voluntary and involuntary context switches of
// every thread of the process.
func contextSwitches(b *testing.B, pid int) int64 {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/status", pid))
	if err != nil || len(tasks) == 0 {
		b.Fatalf("threads of %d: %v", pid, err)
	}
	var n int64
	for _, t := range tasks {
		text, err := os.ReadFile(t)
		if err != nil {
			continue // the thread ended
		}
		for line := range strings.Lines(string(text)) {
			var c int64
			if _, err := fmt.Sscanf(line, "voluntary_ctxt_switches: %d", &c); err == nil {
				n += c
			} else if _, err := fmt.Sscanf(line, "nonvoluntary_ctxt_switches: %d", &c); err == nil {
				n += c
			}
		}
	}
	return n
}

// benchRegistry returns a state directory whose hwauthd.db holds users
// preloaded users (storetest.PreloadRegistration) and, for each account in
// /etc/passwd, one to five registrations; and those accounts, which the API
// can look up (it answers only for accounts that exist). The file is built
// once per size and schema version and kept under $BENCH_CACHE.
func benchRegistry(b *testing.B, users int) (string, []string) {
	cache := cmp.Or(os.Getenv("BENCH_CACHE"), "/var/tmp/hwauthd-bench")
	dir := filepath.Join(cache, fmt.Sprintf("registry-%d-v%d", users, boltstore.SchemaVersion))
	path := filepath.Join(dir, "hwauthd.db")
	accounts := passwdAccounts(b)
	if _, err := os.Stat(path); err == nil {
		return dir, accounts
	}
	b.Logf("building a registry of %d users in %s (once)", users, dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		b.Fatal(err)
	}
	tmp := path + ".new"
	_ = os.Remove(tmp)
	st, err := boltstore.Open(tmp, boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	for lo := 0; lo < users; lo += 10_000 {
		var batch []store.Registration
		for i := lo; i < min(users, lo+10_000); i++ {
			batch = append(batch, storetest.PreloadRegistration(i))
		}
		if err := st.AddRegistrations(ctx, batch, 5, false); err != nil {
			b.Fatal(err)
		}
	}
	var batch []store.Registration
	for j, name := range accounts {
		for k := range 1 + j%5 {
			r := storetest.PreloadRegistration(users + 5*j + k)
			r.User = name
			batch = append(batch, r)
		}
	}
	if err := st.AddRegistrations(ctx, batch, 5, false); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return dir, accounts
}

// passwdAccounts lists the account names in /etc/passwd.
func passwdAccounts(b *testing.B) []string {
	text, err := os.ReadFile("/etc/passwd")
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for line := range strings.Lines(string(text)) {
		if name, _, ok := strings.Cut(line, ":"); ok && name != "" {
			names = append(names, name)
		}
	}
	return names
}

// dropPageCache evicts the file's pages from the page cache, so that the
// next open reads it from the disk as after a reboot.
func dropPageCache(b *testing.B, path string) {
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkStatusUnderFlood: root's GET /v1/status, each on a fresh
// connection as each PAM process makes one, while another user (nobody)
// holds 15,000 connections against the same run idle; and the daemon's
// memory during the flood.
func BenchmarkStatusUnderFlood(b *testing.B) {
	h := startProcess(b)
	status := []timedPath{{"status", 200, func() error { return rootStatus(h.socket) }}}
	idle := measure(b, status)
	f := startFlood(b, h.socket, floodConns)
	flooded := measure(b, status)
	mem := procStatus(b, h.proc.Pid)
	f.stop(b)
	printRatio("root's status: another user holding 15,000 conns / idle", flooded[0], idle[0], "≤ 1.5x")
	printValue("daemon memory during that flood: VmRSS (RssAnon)", fmt.Sprintf("%d MB (%d MB)", mem["VmRSS"]>>10, mem["RssAnon"]>>10), "< 150 MB")
}
