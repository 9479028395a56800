package tpm

import (
	"crypto"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"testing"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/tcp"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/internal/testenv"
)

// commandCounter counts the commands sent to the TPM by command code.
type commandCounter struct {
	inner transport.TPM
	sent  map[tpm2.TPMCC]int
}

func (c *commandCounter) Send(cmd []byte) ([]byte, error) {
	c.sent[commandCode(cmd)]++
	return c.inner.Send(cmd)
}

// countCommands has tp's commands counted from now on.
func countCommands(tp *TPM) *commandCounter {
	c := &commandCounter{inner: tp.tr.inner, sent: map[tpm2.TPMCC]int{}}
	tp.tr.inner = c
	return c
}

// during returns the commands do sent, by code.
func (c *commandCounter) during(do func()) map[tpm2.TPMCC]int {
	before := maps.Clone(c.sent)
	do()
	out := map[tpm2.TPMCC]int{}
	for cc, n := range c.sent {
		if n > before[cc] {
			out[cc] = n - before[cc]
		}
	}
	return out
}

// signCounted signs with card c and verifies, returning the commands sent.
func signCounted(t *testing.T, tp *TPM, cnt *commandCounter, c *Card) map[tpm2.TPMCC]int {
	t.Helper()
	return cnt.during(func() { signAndVerify(t, tp, c, testPIN, cardKey(t, c)) })
}

// onlySign is what a signature with everything held sends.
var onlySign = map[tpm2.TPMCC]int{tpm2.TPMCCPolicySecret: 1, tpm2.TPMCCSign: 1}

// withSwitch is onlySign with the least recently used key flushed and the
// card's saved context loaded.
var withSwitch = map[tpm2.TPMCC]int{tpm2.TPMCCFlushContext: 1, tpm2.TPMCCContextLoad: 1, tpm2.TPMCCPolicySecret: 1, tpm2.TPMCCSign: 1}

func sameCommands(a, b map[tpm2.TPMCC]int) bool { return maps.Equal(a, b) }

// TestManyCardsShareTheSlots: more cards than swtpm has object slots (3)
// sign in patterns, each with its own key and counter. A card's key is
// loaded from its parent once and saved; afterwards a card whose key is
// not among the two held flushes the least recently used one and loads
// its saved context (no TPM2_Load); two cards in turn both stay loaded;
// a wrong PIN counts on its card only.
func TestManyCardsShareTheSlots(t *testing.T) {
	_, tp := newSim(t)
	if slots := property(t, tp, tpm2.TPMPTHRTransientMin); slots >= 5 {
		t.Fatalf("swtpm has %d transient slots; this test wants more cards than slots", slots)
	}
	cards := make([]*Card, 5)
	for i := range cards {
		cards[i] = createCard(t, tp, []string{AlgECCP256, AlgECCP384}[i%2])
	}
	cnt := countCommands(tp)
	for i, c := range cards {
		got := signCounted(t, tp, cnt, c)
		if got[tpm2.TPMCCLoad] != 1 || got[tpm2.TPMCCContextSave] != 1 || got[tpm2.TPMCCContextLoad] != 0 {
			t.Fatalf("card %d's first signature sent %v, want one TPM2_Load and one TPM2_ContextSave", i, got)
		}
	}
	for round := range 2 {
		for i, c := range cards {
			if got := signCounted(t, tp, cnt, c); !sameCommands(got, withSwitch) {
				t.Fatalf("round %d, card %d in turn: sent %v, want %v", round, i, got, withSwitch)
			}
			if n := countLoaded(t, tp); n != 4 {
				t.Fatalf("round %d card %d: %d loaded, want two keys and two sessions", round, i, n)
			}
		}
	}
	a, b, c := cards[0], cards[1], cards[2]
	signCounted(t, tp, cnt, a)
	signCounted(t, tp, cnt, b)
	for i := range 6 { // two cards in turn: both held
		if got := signCounted(t, tp, cnt, []*Card{a, b}[i%2]); !sameCommands(got, onlySign) {
			t.Fatalf("two cards in turn, signature %d: sent %v, want %v", i, got, onlySign)
		}
	}
	// Least recently used goes: after a, b, a, c has pushed out b, not a.
	signCounted(t, tp, cnt, a)
	if got := signCounted(t, tp, cnt, c); !sameCommands(got, withSwitch) {
		t.Fatalf("third card: sent %v, want %v", got, withSwitch)
	}
	if got := signCounted(t, tp, cnt, a); !sameCommands(got, onlySign) {
		t.Fatalf("the card used last before the switch was flushed: sent %v", got)
	}
	if got := signCounted(t, tp, cnt, b); !sameCommands(got, withSwitch) {
		t.Fatalf("the least recently used card: sent %v, want %v", got, withSwitch)
	}
	if cnt.sent[tpm2.TPMCCLoad] != len(cards) {
		t.Fatalf("%d TPM2_Load in all, want one per card", cnt.sent[tpm2.TPMCCLoad])
	}

	digest := sha256.Sum256([]byte("wrong"))
	if _, err := tp.Sign(testCtx(t), cards[3], []byte(wrongPIN), digest[:], crypto.SHA256); err == nil {
		t.Fatal("wrong PIN signed")
	}
	for i, c := range cards {
		want := hwerr.TriesLeft(5)
		if i == 3 {
			want = hwerr.TriesLeft(4)
		}
		if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != want {
			t.Fatalf("card %d: %+v, %v; want %v PIN tries left", i, tr, err, want)
		}
		signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	}
}

// resettableSim opens the engine on a private swtpm and returns a function
// that resets the TPM under it without breaking its connection: swtpm's
// CMD_INIT on the control channel (_TPM_Init, as a power cycle) and
// TPM2_Startup(TPM_SU_CLEAR) without a prior shutdown, a TPM Reset: every
// loaded object and session is gone and saved contexts no longer load. The
// engine's transport gets a stand-in platform port, since swtpm serves one
// control connection and the test needs it.
func resettableSim(t *testing.T) (*TPM, func()) {
	sw := testenv.SWTPM(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	tc, err := tcp.Open(tcp.Config{CommandAddress: sw.Addr(), PlatformAddress: ln.Addr().String()})
	if err != nil {
		t.Fatal(err)
	}
	tp, err := open(testCtx(t), tc, Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tp.Close() })
	return tp, func() {
		t.Helper()
		ctrl, err := net.Dial("tcp", sw.PlatformAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer ctrl.Close()
		var res uint32
		if _, err := ctrl.Write([]byte{0, 0, 0, 2, 0, 0, 0, 0}); err != nil { // CMD_INIT, no flags
			t.Fatal(err)
		}
		if err := binary.Read(ctrl, binary.BigEndian, &res); err != nil || res != 0 {
			t.Fatalf("swtpm CMD_INIT: %v, result %#x", err, res)
		}
		if err := tp.lock(testCtx(t)); err != nil {
			t.Fatal(err)
		}
		defer tp.unlock()
		if _, err := (tpm2.Startup{StartupType: tpm2.TPMSUClear}).Execute(tp.tr); err != nil {
			t.Fatalf("TPM2_Startup after the reset: %v", err)
		}
	}
}

// TestTPMResetUnderneath: the TPM is reset while the engine holds two
// cards' keys, its sessions and saved contexts, over the same connection.
// Each card's first signature afterwards works: the held sessions and
// keys are found gone (the TPM refuses before checking any PIN, so no try
// is counted), the saved context is refused and the key is loaded from its
// parent again. PINs count as before.
func TestTPMResetUnderneath(t *testing.T) {
	tp, reset := resettableSim(t)
	a, b := createCard(t, tp, AlgECCP256), createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, a, testPIN, cardKey(t, a))
	signAndVerify(t, tp, b, testPIN, cardKey(t, b))
	cnt := countCommands(tp)
	reset()
	for _, c := range []*Card{a, b} {
		got := signCounted(t, tp, cnt, c)
		if got[tpm2.TPMCCLoad] != 1 || got[tpm2.TPMCCContextLoad] != 1 || got[tpm2.TPMCCSign] != 1 {
			t.Fatalf("first signature after the reset sent %v, want the saved context tried, one TPM2_Load and one TPM2_Sign", got)
		}
	}
	for i, c := range []*Card{a, b} {
		if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
			t.Fatalf("card %d after the reset: %+v, %v; want no try spent", i, tr, err)
		}
	}
	reset()
	var inc *hwerr.PINIncorrect
	if err := tp.VerifyPIN(testCtx(t), a, []byte(wrongPIN)); !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(4) {
		t.Fatalf("wrong PIN after a reset: %v, want exactly one try counted (4 left)", err)
	}
	reset()
	if err := tp.VerifyPIN(testCtx(t), a, []byte(testPIN)); err != nil {
		t.Fatalf("right PIN after a reset: %v", err)
	}
	signAndVerify(t, tp, a, testPIN, cardKey(t, a))
	signAndVerify(t, tp, b, testPIN, cardKey(t, b))
	for i := range 4 { // the keys loaded again are held again
		if got := signCounted(t, tp, cnt, []*Card{a, b}[i%2]); !sameCommands(got, onlySign) {
			t.Fatalf("two cards in turn after the resets, signature %d: sent %v, want %v", i, got, onlySign)
		}
	}
}

// flushBehind flushes, as another program would, every handle loaded of
// the kinds whose first handles are given (0x80000000 transient objects,
// 0x02000000 loaded sessions); there must be some of each.
func flushBehind(t *testing.T, tp *TPM, what string, kinds ...tpm2.TPMHandle) {
	t.Helper()
	if err := tp.lock(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	defer tp.unlock()
	for _, first := range kinds {
		hs, err := tp.listHandlesLocked(first)
		if err != nil || len(hs) == 0 {
			t.Fatalf("%s: %v loaded, %v", what, hs, err)
		}
		for _, h := range hs {
			if _, err := (tpm2.FlushContext{FlushHandle: h}).Execute(tp.tr); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestHeldFlushedByAnotherProgram: another program flushes what the engine
// holds in the TPM (possible on a TPM without resource manager): the next
// signatures work, with the keys' saved contexts, and spend no try.
func TestHeldFlushedByAnotherProgram(t *testing.T) {
	_, tp := newSim(t)
	cards := []*Card{createCard(t, tp, AlgECCP256), createCard(t, tp, AlgECCP384), createCard(t, tp, AlgECCP256)}
	for _, c := range cards {
		signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	}
	cnt := countCommands(tp)
	for _, tc := range []struct {
		what  string
		kinds []tpm2.TPMHandle
	}{
		{"the keys", []tpm2.TPMHandle{0x80000000}},
		{"the sessions", []tpm2.TPMHandle{0x02000000}},
		{"everything", []tpm2.TPMHandle{0x80000000, 0x02000000}},
	} {
		flushBehind(t, tp, tc.what, tc.kinds...)
		for i, c := range cards {
			if err := tp.VerifyPIN(testCtx(t), c, []byte(testPIN)); err != nil {
				t.Fatalf("%s flushed, card %d: verify: %v", tc.what, i, err)
			}
			if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
				t.Fatalf("%s flushed, card %d: %+v, %v", tc.what, i, tr, err)
			}
			signAndVerify(t, tp, c, testPIN, cardKey(t, c))
		}
		if n := countLoaded(t, tp); n != 4 {
			t.Fatalf("%s flushed: %d loaded after the cards signed, want two keys and two sessions", tc.what, n)
		}
	}
	if n := cnt.sent[tpm2.TPMCCLoad]; n != 0 {
		t.Fatalf("%d TPM2_Load, want none: the saved contexts stay valid", n)
	}
}

// TestSavedKeysBounded: beyond savedKeys cards, the least recently used
// card's saved context is forgotten; it loads from its parent again.
func TestSavedKeysBounded(t *testing.T) {
	tp := &TPM{}
	for i := range savedKeys + 3 {
		tp.keys.clock++
		c := &Card{KeyPublic: fmt.Appendf(nil, "public %d", i)}
		tp.addKeyLocked(c).used = tp.keys.clock
	}
	if n := len(tp.keys.keys); n != savedKeys {
		t.Fatalf("%d keys kept, want %d", n, savedKeys)
	}
	for i := range 3 {
		if _, ok := tp.keys.keys[fmt.Sprintf("public %d", i)]; ok {
			t.Fatalf("key %d, among the least recently used, is still kept", i)
		}
	}
}

// TestSignSecondTryCountsOnce: a signature whose key or sessions were gone
// (flushed behind the engine's back) is tried a second time; a wrong PIN
// is still counted once, and a right one signs and spends nothing.
func TestSignSecondTryCountsOnce(t *testing.T) {
	_, tp := newSim(t)
	c := createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	digest := sha256.Sum256([]byte("second try"))
	for _, gone := range []struct {
		what  string
		first tpm2.TPMHandle
	}{{"the key", 0x80000000}, {"the sessions", 0x02000000}} {
		flushBehind(t, tp, gone.what, gone.first)
		signAndVerify(t, tp, c, testPIN, cardKey(t, c))
		if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) {
			t.Fatalf("%s gone, right PIN: %+v, %v; want no try spent", gone.what, tr, err)
		}
		flushBehind(t, tp, gone.what, gone.first)
		_, err := tp.Sign(testCtx(t), c, []byte(wrongPIN), digest[:], crypto.SHA256)
		var inc *hwerr.PINIncorrect
		if !errors.As(err, &inc) || inc.RetriesLeft != hwerr.TriesLeft(4) {
			t.Fatalf("%s gone, wrong PIN: %v; want one try counted (4 left)", gone.what, err)
		}
		signAndVerify(t, tp, c, testPIN, cardKey(t, c)) // the counter back to 5
	}
}

// TestPINChangesAfterTPMReset: after a TPM reset the held PIN session is
// gone; a PIN change or unblock, the first operation after it, starts a
// fresh one and goes through (the TPM refused the PolicySecret before
// checking the PIN: nothing was spent), as a signature does.
func TestPINChangesAfterTPMReset(t *testing.T) {
	tp, reset := resettableSim(t)
	c := createCard(t, tp, AlgECCP256)
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
	reset()
	const newPIN = "new-pin-1"
	if err := tp.ChangePIN(testCtx(t), c, []byte(testPIN), []byte(newPIN)); err != nil {
		t.Fatalf("PIN change, first after a reset: %v", err)
	}
	signAndVerify(t, tp, c, newPIN, cardKey(t, c))
	reset()
	if err := tp.UnblockPIN(testCtx(t), c, []byte(testPUK), []byte(testPIN)); err != nil {
		t.Fatalf("unblock, first after a reset: %v", err)
	}
	if tr, err := tp.Tries(testCtx(t), c); err != nil || tr.PIN != hwerr.TriesLeft(5) || tr.PUK != hwerr.TriesLeft(c.PUKTries) {
		t.Fatalf("after the unblock: %+v, %v; want every try left", tr, err)
	}
	signAndVerify(t, tp, c, testPIN, cardKey(t, c))
}
