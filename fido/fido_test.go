package fido

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/fido/fidotest/vfido"
	"github.com/hwauthd/hwauthd/fido/webauthn"
	"github.com/hwauthd/hwauthd/hwerr"
)

const testRP = "pam://testhost"

// pin returns a fresh PIN buffer (the backend zeroes the ones it is given).
func pin(s string) []byte { return []byte(s) }

func openKey(t *testing.T, cfg Config, opts softkey.Options) (*vfido.Device, *Key) {
	t.Helper()
	d := vfido.Start(t, opts)
	k, err := New(cfg).Open(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	return d, k
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func TestListAndInfo(t *testing.T) {
	d, k := openKey(t, Config{}, softkey.Options{AAGUID: [16]byte{0xab, 0xcd}})
	devs, err := New(Config{}).List(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(devs, func(di DeviceInfo) bool { return di.Path == d.Path && di.Product == "softkey" }) {
		t.Fatalf("List %+v lacks %s", devs, d.Path)
	}
	info, err := k.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if info.AAGUID != "abcd0000000000000000000000000000" || info.PINSet || info.PINRetries.Known() || !info.ResidentKeys {
		t.Fatalf("info %+v", info)
	}
	if !slices.Contains(info.Versions, "FIDO_2_1") || !slices.Equal(info.PINProtocols, []int{2, 1}) {
		t.Fatalf("versions %v protocols %v", info.Versions, info.PINProtocols)
	}
}

func TestOpenIsOneOwnerPerPath(t *testing.T) {
	b := New(Config{})
	k1, _ := b.Open("vfido:/nonexistent")
	k2, _ := b.Open("vfido:/nonexistent")
	if k1 != k2 {
		t.Fatal("two owners for one path")
	}
}

func TestPINLifecycle(t *testing.T) {
	for _, opts := range []softkey.Options{{}, {PINProtocols: []int{1}}, {CTAP20: true}} {
		d, k := openKey(t, Config{}, opts)
		ctx := ctxT(t)
		if err := k.SetPIN(ctx, pin("12")); !errors.Is(err, hwerr.ErrPINPolicy) {
			t.Fatalf("short PIN: %v", err)
		}
		buf := pin("1234")
		if err := k.SetPIN(ctx, buf); err != nil {
			t.Fatalf("%+v: set PIN: %v", opts, err)
		}
		if !slices.Equal(buf, make([]byte, 4)) {
			t.Fatal("PIN buffer not zeroed")
		}
		if err := k.SetPIN(ctx, pin("5678")); !errors.Is(err, hwerr.ErrInvalidInput) {
			t.Fatalf("second set PIN: %v", err)
		}
		if info, err := k.Info(ctx); err != nil || !info.PINSet || info.PINRetries != hwerr.TriesLeft(8) {
			t.Fatalf("info %+v %v", info, err)
		}
		if err := k.VerifyPIN(ctx, pin("1234")); err != nil {
			t.Fatalf("verify right PIN: %v", err)
		}
		for want := 7; want >= 6; want-- {
			var pe *hwerr.PINIncorrect
			if err := k.VerifyPIN(ctx, pin("0000")); !errors.As(err, &pe) || pe.RetriesLeft != hwerr.TriesLeft(want) {
				t.Fatalf("wrong PIN: %v, want %d retries", err, want)
			}
		}
		if err := k.VerifyPIN(ctx, pin("0000")); !errors.Is(err, hwerr.ErrLockout) {
			t.Fatalf("third wrong PIN: %v", err)
		}
		if err := k.VerifyPIN(ctx, pin("1234")); !errors.Is(err, hwerr.ErrLockout) {
			t.Fatalf("right PIN before power cycle: %v", err)
		}
		d.Key.PowerCycle()
		if err := k.ChangePIN(ctx, pin("9999"), pin("4321")); !errors.As(err, new(*hwerr.PINIncorrect)) {
			t.Fatalf("change with wrong PIN: %v", err)
		}
		if err := k.ChangePIN(ctx, pin("1234"), pin("4321")); err != nil {
			t.Fatalf("change PIN: %v", err)
		}
		if err := k.VerifyPIN(ctx, pin("4321")); err != nil {
			t.Fatalf("verify new PIN: %v", err)
		}
		if n := d.Key.PINRetries(); n != 8 {
			t.Fatalf("retries after success %d", n)
		}
	}
}

func TestPINBlockedAfterEight(t *testing.T) {
	d, k := openKey(t, Config{}, softkey.Options{})
	ctx := ctxT(t)
	if err := k.SetPIN(ctx, pin("1234")); err != nil {
		t.Fatal(err)
	}
	var last error
	for i := 1; i <= 8; i++ {
		last = k.VerifyPIN(ctx, pin("0000"))
		if i%2 == 0 {
			d.Key.PowerCycle()
		}
	}
	if !errors.Is(last, hwerr.ErrPINBlocked) {
		t.Fatalf("eighth wrong PIN: %v", last)
	}
	if err := k.VerifyPIN(ctx, pin("1234")); !errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatalf("right PIN on a blocked key: %v", err)
	}
}

func TestMakeCredentialAndAssert(t *testing.T) {
	for _, tc := range []struct {
		name string
		alg  int
		opts softkey.Options
		rk   bool
	}{
		{"ES256", ES256, softkey.Options{}, false},
		{"EdDSA", EdDSA, softkey.Options{}, true},
		{"ES256 protocol 1", ES256, softkey.Options{PINProtocols: []int{1}}, false},
		{"EdDSA CTAP 2.0 none attestation", EdDSA, softkey.Options{CTAP20: true, NoneAttestation: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, k := openKey(t, Config{}, tc.opts)
			ctx := ctxT(t)
			if err := k.SetPIN(ctx, pin("123456")); err != nil {
				t.Fatal(err)
			}
			if _, err := k.MakeCredential(ctx, testRP, []byte("uid"), "alice", hash("reg"), tc.alg, nil, tc.rk); !errors.Is(err, hwerr.ErrPINRequired) {
				t.Fatalf("make credential without PIN: %v", err)
			}
			cred, err := k.MakeCredential(ctx, testRP, []byte("uid"), "alice", hash("reg"), tc.alg, pin("123456"), tc.rk)
			if err != nil {
				t.Fatalf("make credential: %v", err)
			}
			pub, alg, err := webauthn.ParseCOSEKey(cred.PublicKeyCOSE)
			if err != nil || alg != tc.alg {
				t.Fatalf("stored key: alg %d %v", alg, err)
			}
			var ids [][]byte
			if !tc.rk {
				ids = [][]byte{cred.ID}
			}
			a, err := k.Assert(ctx, testRP, hash("login"), ids, pin("123456"), true)
			if err != nil {
				t.Fatalf("assert: %v", err)
			}
			if !slices.Equal(a.CredentialID, cred.ID) {
				t.Fatalf("assertion by %x, want %x", a.CredentialID, cred.ID)
			}
			n, err := webauthn.VerifyAssertion(pub, testRP, hash("login"), a.AuthData, a.Sig, true, true, cred.Counter)
			if err != nil || n != a.Counter || n <= cred.Counter {
				t.Fatalf("verify assertion: counter %d→%d: %v", cred.Counter, n, err)
			}
			if _, err := webauthn.VerifyAssertion(pub, testRP, hash("other"), a.AuthData, a.Sig, true, true, 0); !errors.Is(err, webauthn.ErrBadSignature) {
				t.Fatalf("assertion verified for other client data: %v", err)
			}
			if _, err := k.Assert(ctx, "pam://elsewhere", hash("login"), [][]byte{cred.ID}, nil, true); !errors.Is(err, hwerr.ErrNotFound) {
				t.Fatalf("other relying party: %v", err)
			}
		})
	}
}

func TestInvalidInputIsRefusedBeforeTheLibrary(t *testing.T) {
	_, k := openKey(t, Config{}, softkey.Options{})
	ctx := ctxT(t)
	if _, err := k.Assert(ctx, testRP, hash("x"), [][]byte{{}}, nil, true); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Errorf("empty credential id: %v", err)
	}
	if _, err := k.Assert(ctx, testRP, nil, nil, nil, true); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Errorf("empty client data hash: %v", err)
	}
	if _, err := k.MakeCredential(ctx, testRP, nil, "a", hash("x"), ES256, nil, false); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Errorf("empty user id: %v", err)
	}
	if _, err := k.MakeCredential(ctx, testRP, []byte("u"), "a", hash("x"), -257, nil, false); !errors.Is(err, hwerr.ErrNotSupported) {
		t.Errorf("RS256: %v", err)
	}
}

func TestCounterRegressionIsDetected(t *testing.T) {
	d, k := openKey(t, Config{}, softkey.Options{})
	ctx := ctxT(t)
	cred, err := k.MakeCredential(ctx, testRP, []byte("u"), "bob", hash("r"), ES256, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _ := webauthn.ParseCOSEKey(cred.PublicKeyCOSE)
	d.Key.SetCounter(100)
	a, err := k.Assert(ctx, testRP, hash("1"), [][]byte{cred.ID}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	last, err := webauthn.VerifyAssertion(pub, testRP, hash("1"), a.AuthData, a.Sig, true, false, cred.Counter)
	if err != nil || last != 100 {
		t.Fatalf("first assertion: %d %v", last, err)
	}
	d.Key.SetCounter(50)
	a, err = k.Assert(ctx, testRP, hash("2"), [][]byte{cred.ID}, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := webauthn.VerifyAssertion(pub, testRP, hash("2"), a.AuthData, a.Sig, true, false, last); !errors.Is(err, webauthn.ErrPossibleClone) {
		t.Fatalf("counter 50 after 100: %v", err)
	}
}

// waitTouchRequest waits until the soft key asks for a touch.
func waitTouchRequest(t *testing.T, d *vfido.Device) {
	t.Helper()
	select {
	case <-d.Key.TouchRequests():
	case <-time.After(10 * time.Second):
		t.Fatal("the key never asked for a touch")
	}
}

// touchOnce grants one touch when the key next asks for one (or gives up
// after a while so that no goroutine outlives a failed test for long).
func touchOnce(d *vfido.Device, touch chan<- struct{}) {
	go func() {
		select {
		case <-d.Key.TouchRequests():
			touch <- struct{}{}
		case <-time.After(10 * time.Second):
		}
	}()
}

func TestCancelWhileWaitingForTouch(t *testing.T) {
	touch := make(chan struct{})
	notices := make(chan string, 4)
	cfg := Config{TouchNoticeDelay: time.Millisecond, TouchNotice: func(p string) { notices <- p }}
	d, k := openKey(t, cfg, softkey.Options{Presence: softkey.PresenceChannel, Touch: touch})
	touchOnce(d, touch)
	cred, err := k.MakeCredential(ctxT(t), testRP, []byte("u"), "carol", hash("r"), EdDSA, nil, false)
	if err != nil {
		t.Fatalf("make credential with a touch: %v", err)
	}
	drain(notices)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := k.Assert(ctx, testRP, hash("x"), [][]byte{cred.ID}, nil, true)
		errc <- err
	}()
	waitTouchRequest(t, d)
	select {
	case p := <-notices:
		if p != d.Path {
			t.Fatalf("touch notice for %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no touch notice")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, hwerr.ErrCanceled) {
			t.Fatalf("cancelled assertion: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("assertion did not end after cancel")
	}
	// The key is usable afterwards: a touch now completes an assertion.
	touchOnce(d, touch)
	a, err := k.Assert(ctxT(t), testRP, hash("y"), [][]byte{cred.ID}, nil, true)
	if err != nil || a.Flags&webauthn.FlagUP == 0 {
		t.Fatalf("assertion after cancel: %+v %v", a, err)
	}
}

func TestTouchTimeout(t *testing.T) {
	_, k := openKey(t, Config{TouchTimeout: 300 * time.Millisecond}, softkey.Options{Presence: softkey.PresenceNever})
	start := time.Now()
	_, err := k.MakeCredential(ctxT(t), testRP, []byte("u"), "dave", hash("r"), ES256, nil, false)
	if !errors.Is(err, hwerr.ErrTimeout) {
		t.Fatalf("no touch: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("timeout took %v", d)
	}
}

func TestKeyTimesOutItself(t *testing.T) {
	_, k := openKey(t, Config{}, softkey.Options{Presence: softkey.PresenceNever, TouchTimeout: 200 * time.Millisecond})
	if _, err := k.MakeCredential(ctxT(t), testRP, []byte("u"), "erin", hash("r"), ES256, nil, false); !errors.Is(err, hwerr.ErrTimeout) {
		t.Fatalf("user action timeout: %v", err)
	}
}

func TestUnplugDuringOperation(t *testing.T) {
	touch := make(chan struct{})
	d, k := openKey(t, Config{}, softkey.Options{Presence: softkey.PresenceChannel, Touch: touch})
	touchOnce(d, touch)
	cred, err := k.MakeCredential(ctxT(t), testRP, []byte("u"), "frank", hash("r"), ES256, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() {
		_, err := k.Assert(ctxT(t), testRP, hash("x"), [][]byte{cred.ID}, nil, true)
		errc <- err
	}()
	waitTouchRequest(t, d)
	d.Unplug()
	select {
	case err := <-errc:
		if !errors.Is(err, hwerr.ErrRemoved) {
			t.Fatalf("unplugged during assertion: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("assertion hangs after unplug")
	}
	if _, err := k.Info(ctxT(t)); !errors.Is(err, hwerr.ErrRemoved) {
		t.Fatalf("info after unplug: %v", err)
	}
}

func TestConcurrentCallersAreSerialized(t *testing.T) {
	_, k := openKey(t, Config{}, softkey.Options{})
	ctx := ctxT(t)
	cred, err := k.MakeCredential(ctx, testRP, []byte("u"), "gina", hash("r"), ES256, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 8)
	for range 8 {
		go func() {
			_, err := k.Assert(ctx, testRP, hash("c"), [][]byte{cred.ID}, nil, true)
			errc <- err
		}()
	}
	for range 8 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
}

func TestRandomIDsAreNotFound(t *testing.T) {
	_, k := openKey(t, Config{}, softkey.Options{})
	id := make([]byte, 48)
	rand.Read(id)
	if _, err := k.Assert(ctxT(t), testRP, hash("x"), [][]byte{id}, nil, false); !errors.Is(err, hwerr.ErrNotFound) {
		t.Fatalf("unknown credential: %v", err)
	}
}

// drain empties a channel of notices without waiting.
func drain(c chan string) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// TestFaultsEndInBoundedTime injects faults into the soft key's answers.
// During open (getInfo) a fault makes libfido2 fall back to U2F, which the
// soft key does not speak, and the exchange fails like a vanished device.
// During an assertion garbage is a
// protocol error and a stalled or dropped answer ends with the interposer's
// read timeout, which libfido2 reports like a vanished device. The key works
// again afterwards.
func TestFaultsEndInBoundedTime(t *testing.T) {
	t.Setenv("HWAUTHD_VFIDO_TIMEOUT_MS", "300")
	d, k := openKey(t, Config{}, softkey.Options{})
	ctx := ctxT(t)
	cred, err := k.MakeCredential(ctx, testRP, []byte("u"), "hal", hash("r"), ES256, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		fault softkey.Fault
		skip  int
		want  error
	}{
		{softkey.FaultGarbage, 0, hwerr.ErrRemoved},
		{softkey.FaultStall, 0, hwerr.ErrRemoved},
		{softkey.FaultGarbage, 1, hwerr.ErrProtocol},
		{softkey.FaultStall, 1, hwerr.ErrRemoved},
		{softkey.FaultDrop, 1, hwerr.ErrRemoved},
	} {
		d.Key.InjectFaultAfter(tc.fault, tc.skip)
		start := time.Now()
		if _, err := k.Assert(ctx, testRP, hash("f"), [][]byte{cred.ID}, nil, true); !errors.Is(err, tc.want) {
			t.Errorf("fault %d: %v, want %v", tc.fault, err, tc.want)
		}
		if el := time.Since(start); el > 5*time.Second {
			t.Errorf("fault %d took %v", tc.fault, el)
		}
		if _, err := k.Info(ctx); err != nil {
			t.Fatalf("after fault %d: %v", tc.fault, err)
		}
	}
}
