package pivcard

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

func newTestCard(t testing.TB) *Card {
	t.Helper()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func send(t testing.TB, c *Card, hexAPDU string) apdu.Response {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(hexAPDU, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	r, err := apdu.ParseResponse(c.Transmit(b))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestStatusWords checks the card's answers to the probes OpenSC and other
// clients send (TESTING.md, "What an emulated PIV card must answer").
func TestStatusWords(t *testing.T) {
	c := newTestCard(t)
	tests := []struct {
		name string
		apdu string
		sw   uint16
	}{
		{"discovery without select", "00CB3FFF035C017E00", 0x9000},
		{"select partial AID", "00A4040005A00000030800", 0x9000},
		{"select full AID", "00A404000BA000000308000010000100" + "00", 0x9000},
		{"select CoolKey", "00A4040007627601FF00000000", 0x6A82},
		{"select MUSCLE", "00A4040006A0000000010100", 0x6A82},
		{"select too short prefix", "00A4040004A0000003" + "00", 0x6A82},
		{"select by file id", "00A4000C023F00", 0x6A86},
		{"get data DF30 (INS CA)", "00CADF3000", 0x6D00},
		{"get data DF30 tag", "00CB3FFF045C02DF3000", 0x6A82},
		{"CCC absent", "00CB3FFF055C035FC10700", 0x6A82},
		{"key history absent", "00CB3FFF055C035FC10C00", 0x6A82},
		{"9E certificate absent", "00CB3FFF055C035FC10100", 0x6A82},
		{"get data bad P1P2", "00CB3FFE035C017E00", 0x6A86},
		{"get data no tag list", "00CB3FFF03" + "4F017E00", 0x6A80},
		{"GET VERSION refused as by non-YubiKey cards", "00FD000000", 0x6D00},
		{"GET SERIAL refused", "00F8000000", 0x6D00},
		{"generate without management key", "0047009A05AC03800111", 0x6982},
		{"put data without management key", "00DB3FFF0A5C035FC10553037001FF", 0x6982},
		{"set management key without management key", "00FFFFFF1B039B18" + strings.Repeat("01", 24), 0x6982},
		{"management key wrong algorithm", "0087089B047C028000", 0x6A86},
		{"bad class", "80CB3FFF035C017E00", 0x6E00},
		{"malformed length", "00CB3FFF0901", 0x6700},
		{"verify PUK reference", "0020008100", 0x6A88},
		{"verify short PIN", "0020008003313233", 0x6A80},
		{"empty verify", "0020008000", 0x63C3},
		{"get response with nothing pending", "00C0000000", 0x6985},
		{"sign without PIN", "0087119A" + "26" + "7C2482008120" + strings.Repeat("00", 32) + "00", 0x6982},
		{"sign empty slot", "0087119C" + "26" + "7C2482008120" + strings.Repeat("00", 32) + "00", 0x6A86},
		{"sign wrong algorithm", "0087149A" + "26" + "7C2482008120" + strings.Repeat("00", 32) + "00", 0x6A86},
	}
	for _, tt := range tests {
		if r := send(t, c, tt.apdu); r.SW != tt.sw {
			t.Errorf("%s: SW %04X, want %04X", tt.name, r.SW, tt.sw)
		}
	}
}

func TestSelectAnswersTemplate(t *testing.T) {
	c := newTestCard(t)
	r := send(t, c, "00A4040005A00000030800")
	if r.SW != 0x9000 || len(r.Data) < 2 || r.Data[0] != 0x61 || !bytes.Contains(r.Data, piv.AID) {
		t.Fatalf("SELECT = %X %04X, want 61 {…AID…}", r.Data, r.SW)
	}
}

func TestSecurityStatusLostOnReset(t *testing.T) {
	c := newTestCard(t)
	pin := "0020008008" + hex.EncodeToString([]byte("123456")) + "FFFF"
	for _, lose := range []func(){c.Reset, c.PowerOff} {
		if r := send(t, c, pin); r.SW != 0x9000 {
			t.Fatalf("VERIFY: %04X", r.SW)
		}
		if r := send(t, c, "0020008000"); r.SW != 0x9000 {
			t.Fatalf("empty VERIFY after verify: %04X, want 9000", r.SW)
		}
		lose()
		if r := send(t, c, "0020008000"); r.SW != 0x63C3 {
			t.Errorf("empty VERIFY after reset: %04X, want 63C3", r.SW)
		}
	}
}

func TestOutputChaining(t *testing.T) {
	c := newTestCard(t)
	der := c.Certificate(piv.SlotAuthentication)
	r := send(t, c, "00CB3FFF055C035FC10500")
	got := r.Data
	for r.SW&0xFF00 == 0x6100 {
		r = send(t, c, "00C00000"+hex.EncodeToString([]byte{byte(r.SW)}))
		got = append(got, r.Data...)
	}
	if r.SW != 0x9000 || !bytes.Contains(got, der) {
		t.Fatalf("chained read: %d bytes, SW %04X; certificate not inside", len(got), r.SW)
	}
	// Another command drops the pending data.
	r = send(t, c, "00CB3FFF055C035FC10500")
	if r.SW&0xFF00 != 0x6100 {
		t.Fatalf("SW %04X, want 61xx", r.SW)
	}
	send(t, c, "0020008000")
	if r := send(t, c, "00C0000000"); r.SW != 0x6985 {
		t.Errorf("GET RESPONSE after another command: %04X, want 6985", r.SW)
	}
}

func TestCommandChaining(t *testing.T) {
	c := newTestCard(t)
	// VERIFY split into two chained parts.
	if r := send(t, c, "1020008004"+hex.EncodeToString([]byte("1234"))); r.SW != 0x9000 {
		t.Fatalf("first part: %04X", r.SW)
	}
	if r := send(t, c, "0020008004"+hex.EncodeToString([]byte("56"))+"FFFF"); r.SW != 0x9000 {
		t.Fatalf("last part: %04X, want the PIN verified", r.SW)
	}
	// A different command breaks the chain: the last part alone is too short.
	send(t, c, "1020008004"+hex.EncodeToString([]byte("1234")))
	send(t, c, "00CB3FFF035C017E00")
	if r := send(t, c, "0020008004"+hex.EncodeToString([]byte("56"))+"FFFF"); r.SW != 0x6A80 {
		t.Errorf("last part after an interruption: %04X, want 6A80", r.SW)
	}
	big := "10CB3FFFFF" + strings.Repeat("00", 255)
	parts := 0
	for sw := uint16(0x9000); sw == 0x9000 && parts < 100; parts++ {
		sw = send(t, c, big).SW
	}
	if parts != maxChain/255+1 {
		t.Errorf("endless chain refused after %d parts, want %d", parts, maxChain/255+1)
	}
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	c := newTestCard(t)
	path := filepath.Join(t.TempDir(), "card.json")
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, %v", fi.Mode(), err)
	}
	raw, _ := os.ReadFile(path)
	if bytes.Contains(raw, []byte(DefaultPIN)) || bytes.Contains(raw, []byte(DefaultPUK)) {
		t.Fatal("state file holds the PIN or PUK in clear")
	}
	client := piv.NewClient(Transmitter(c))
	var pinErr *hwerr.PINIncorrect
	if err := client.VerifyPIN(ctx, []byte("999999")); !errors.As(err, &pinErr) {
		t.Fatal(err)
	}
	loaded, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if loaded.GUID() != c.GUID() || !bytes.Equal(loaded.Certificate(piv.SlotAuthentication), c.Certificate(piv.SlotAuthentication)) {
		t.Error("loaded card differs")
	}
	lc := piv.NewClient(Transmitter(loaded))
	if n, err := lc.PINRetries(ctx); err != nil || n != hwerr.TriesLeft(2) {
		t.Errorf("retries after load = %v, %v; want the failure saved (2)", n, err)
	}
	if err := lc.VerifyPIN(ctx, []byte(DefaultPIN)); err != nil {
		t.Errorf("PIN after load: %v", err)
	}
	digest := sha256.Sum256([]byte("after load"))
	cert, _ := x509.ParseCertificate(c.Certificate(piv.SlotAuthentication))
	sig, err := lc.PrivateKey(piv.SlotAuthentication, cert.PublicKey).SignContext(ctx, rand.Reader, digest[:], crypto.SHA256)
	if err != nil {
		t.Fatalf("sign after load: %v", err)
	}
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), digest[:], sig) {
		t.Error("signature of the loaded key does not verify against the saved certificate")
	}
	os.WriteFile(path, []byte(`{"version":1}`), 0o600)
	if _, err := Load(path); err == nil {
		t.Error("Load of an incomplete state succeeded")
	}
}

func TestNewOptions(t *testing.T) {
	if _, err := New(Options{PIN: "123"}); err == nil {
		t.Error("3-digit PIN accepted")
	}
	if _, err := New(Options{PINTries: 16}); err == nil {
		t.Error("16 tries accepted")
	}
	if _, err := New(Options{Slots: []SlotSpec{{Slot: 0x9B, Alg: piv.KeyAlgP256}}}); err == nil {
		t.Error("slot 9B accepted")
	}
	specs, err := ParseSlots("9a=p256,9C=P384,9d=rsa2048")
	if err != nil || len(specs) != 3 || specs[1].Slot != piv.SlotSignature || specs[2].Alg != piv.KeyAlgRSA2048 {
		t.Errorf("ParseSlots = %+v, %v", specs, err)
	}
	for _, bad := range []string{"9a", "9b=p256", "9a=ed25519", ""} {
		if _, err := ParseSlots(bad); err == nil {
			t.Errorf("ParseSlots(%q) succeeded", bad)
		}
	}
	c, err := New(Options{PIN: "87654321", PINTries: 5, Label: "Alice", Serial: "123456"})
	if err != nil {
		t.Fatal(err)
	}
	if r := send(t, c, "0020008000"); r.SW != 0x63C5 {
		t.Errorf("5 tries: %04X", r.SW)
	}
	serial, err := piv.NewClient(Transmitter(c)).Serial(context.Background())
	if err != nil || serial != "9999-9999-123456" {
		t.Errorf("Serial = %q, %v", serial, err)
	}
}

func TestConcurrentUse(t *testing.T) {
	c := newTestCard(t)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				r, _ := apdu.ParseResponse(c.Transmit([]byte{0, 0xCB, 0x3F, 0xFF, 3, 0x5C, 1, 0x7E, 0}))
				if r.SW != 0x9000 {
					t.Errorf("discovery under load: %04X", r.SW)
					return
				}
			}
		})
	}
	wg.Wait()
}

// FuzzCardTransmit checks that no sequence of APDUs panics the card and
// that every answer carries a status word.
func FuzzCardTransmit(f *testing.F) {
	for _, s := range []string{"00CB3FFF035C017E00", "00A4040005A00000030800", "1020008004", "0087119A047C02820000",
		"0020008008313233343536FFFF", "00C0000000", "00CB3FFF055C035FC10500", "002C008010", "00000000000000",
		"0087039B047C028000", "0087039B047C028100", "0084000008", "0047009A05AC03800111", "00DB3FFF0A5C035FC10553037001FF",
		"00FFFFFF1B039B18" + strings.Repeat("01", 24)} {
		b, _ := hex.DecodeString(s)
		f.Add(b, b)
	}
	c := newTestCard(f)
	f.Fuzz(func(t *testing.T, a, b []byte) {
		for _, in := range [][]byte{a, b} {
			if out := c.Transmit(in); len(out) < 2 {
				t.Fatalf("Transmit(%X) = %X, no status word", in, out)
			}
		}
	})
}
