package pkcs11

import (
	"bufio"
	"context"
	"crypto/sha256"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/internal/testenv"
	p11 "github.com/miekg/pkcs11"
)

// BenchmarkSignBackend signs with ECDSA P-256 through the backend: the
// request crosses the socket to the helper, which opens a session, logs in,
// finds the key, signs, logs out and closes the session. Compare with
// BenchmarkSignDirect for the cost of the helper process.
func BenchmarkSignBackend(b *testing.B) {
	s := newSoftToken(b, Config{})
	d := s.device(b, "hw")
	digest := sha256.Sum256([]byte("bench"))
	req := device.SignRequest{Key: "01", Algorithm: "ecdsa-sha256", Digest: digest[:], PIN: []byte(testPIN)}
	b.ResetTimer()
	for b.Loop() {
		if _, err := d.Sign(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignDirect does the same work as one backend signature with
// miekg/pkcs11 in this process on the same kind of SoftHSM2 token: open a
// session, C_Login, find the key, C_SignInit, C_Sign, C_Logout, close.
func BenchmarkSignDirect(b *testing.B) {
	s := newSoftToken(b, Config{})
	b.Setenv("SOFTHSM2_CONF", s.hsm.Conf())
	benchModuleSign(b, s, s.hsm.Module())
}

// benchModuleSign loads module in this process and measures directSign on
// the token of s through it.
func benchModuleSign(b *testing.B, s *softToken, module string) {
	ctx := p11.New(module)
	if ctx == nil {
		b.Fatalf("cannot load %s", module)
	}
	if err := ctx.Initialize(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ctx.Finalize(); ctx.Destroy() })
	slot := directSlot(b, ctx, s.device(b, "hw").tok.Serial)
	digest := sha256.Sum256([]byte("bench"))
	b.ResetTimer()
	for b.Loop() {
		directSign(b, ctx, slot, digest[:])
	}
}

// directSlot finds the slot of the token with serial.
func directSlot(b *testing.B, ctx *p11.Ctx, serial string) uint {
	slots, err := ctx.GetSlotList(true)
	if err != nil {
		b.Fatal(err)
	}
	for _, sl := range slots {
		if ti, err := ctx.GetTokenInfo(sl); err == nil && ti.SerialNumber == serial {
			return sl
		}
	}
	b.Fatalf("no token with serial %s", serial)
	return 0
}

func directSign(b *testing.B, ctx *p11.Ctx, slot uint, digest []byte) {
	sh, err := ctx.OpenSession(slot, p11.CKF_SERIAL_SESSION)
	if err != nil {
		b.Fatal(err)
	}
	defer ctx.CloseSession(sh)
	if err := ctx.Login(sh, p11.CKU_USER, testPIN); err != nil {
		b.Fatal(err)
	}
	defer ctx.Logout(sh)
	if err := ctx.FindObjectsInit(sh, []*p11.Attribute{
		p11.NewAttribute(p11.CKA_CLASS, p11.CKO_PRIVATE_KEY), p11.NewAttribute(p11.CKA_ID, []byte{1}),
	}); err != nil {
		b.Fatal(err)
	}
	objs, _, err := ctx.FindObjects(sh, 1)
	ctx.FindObjectsFinal(sh)
	if err != nil || len(objs) != 1 {
		b.Fatalf("find key: %v", err)
	}
	if err := ctx.SignInit(sh, []*p11.Mechanism{p11.NewMechanism(p11.CKM_ECDSA, nil)}, objs[0]); err != nil {
		b.Fatal(err)
	}
	if _, err := ctx.Sign(sh, digest); err != nil {
		b.Fatal(err)
	}
}

// p11KitClient is p11-kit's client module, which forwards to a p11-kit
// server.
const p11KitClient = "/usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so"

// BenchmarkSignP11Kit does the same work as BenchmarkSignDirect through
// p11-kit's remoting (p11-kit server + p11-kit-client.so), the established
// way of running modules in another process, on the same kind of token.
func BenchmarkSignP11Kit(b *testing.B) {
	testenv.RequireBinaries(b, "p11-kit")
	testenv.RequireFiles(b, p11KitClient)
	s := newSoftToken(b, Config{})
	sock := filepath.Join(b.TempDir(), "p11-kit.sock")
	cmd := exec.Command("p11-kit", "server", "-f", "-s", "-n", sock, "--provider", s.hsm.Module(), "pkcs11:token=hw")
	cmd.Env = s.hsm.Env()
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// The server prints its address once it listens.
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "P11_KIT_SERVER_ADDRESS=") {
		b.Fatalf("p11-kit server: %q, %v", line, err)
	}
	b.Setenv("P11_KIT_SERVER_ADDRESS", "unix:path="+sock)
	benchModuleSign(b, s, p11KitClient)
}
