package apdu

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

// chainCard is a minimal card for Exchange's framing: it collects chained
// command data, answers with the collected data reversed in 61xx parts of at
// most part bytes, and demands Le = exactLe with 6Cxx when exactLe is set.
type chainCard struct {
	part    int
	exactLe int
	sent    [][]byte
	chain   []byte
	pending []byte
}

func (c *chainCard) Transmit(_ context.Context, b []byte) ([]byte, error) {
	c.sent = append(c.sent, append([]byte(nil), b...))
	cmd, err := ParseCommand(b)
	if err != nil {
		return Response{SW: SWWrongLength}.Bytes(), nil
	}
	if cmd.INS == insGetResponse {
		return c.next(cmd.Le), nil
	}
	c.chain = append(c.chain, cmd.Data...)
	if cmd.CLA&claChaining != 0 {
		return Response{SW: SWSuccess}.Bytes(), nil
	}
	if c.exactLe != 0 && cmd.Le != c.exactLe {
		c.chain = nil
		return Response{SW: SWWrongLe | uint16(c.exactLe&0xFF)}.Bytes(), nil
	}
	c.pending = bytes.Clone(c.chain)
	for i, j := 0, len(c.pending)-1; i < j; i, j = i+1, j-1 {
		c.pending[i], c.pending[j] = c.pending[j], c.pending[i]
	}
	c.chain = nil
	return c.next(c.part), nil
}

func (c *chainCard) next(max int) []byte {
	n := min(max, c.part, len(c.pending))
	r := Response{Data: c.pending[:n], SW: SWSuccess}
	c.pending = c.pending[n:]
	if len(c.pending) > 0 {
		r.SW = SWBytesRemaining | uint16(min(len(c.pending), 256)&0xFF)
	}
	return r.Bytes()
}

func TestExchangeChaining(t *testing.T) {
	data := make([]byte, 600)
	for i := range data {
		data[i] = byte(i * 7)
	}
	card := &chainCard{part: 256}
	resp, err := Exchange(context.Background(), card, Command{INS: 0x87, P1: 0x07, P2: 0x9A, Data: data, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Clone(data)
	for i, j := 0, len(want)-1; i < j; i, j = i+1, j-1 {
		want[i], want[j] = want[j], want[i]
	}
	if !bytes.Equal(resp.Data, want) {
		t.Fatalf("response of %d bytes does not match the %d bytes sent", len(resp.Data), len(data))
	}
	// 600 bytes: two chained parts of 255 and a last of 90; then 600 bytes
	// back: 256 in the answer and two GET RESPONSE.
	if len(card.sent) != 5 {
		t.Fatalf("sent %d APDUs, want 5", len(card.sent))
	}
	for i, wantCLA := range []byte{0x10, 0x10, 0x00, 0x00, 0x00} {
		if card.sent[i][0] != wantCLA {
			t.Errorf("APDU %d CLA = %02X, want %02X", i, card.sent[i][0], wantCLA)
		}
	}
	if got := card.sent[3]; !bytes.Equal(got, []byte{0, 0xC0, 0, 0, 0}) {
		t.Errorf("first GET RESPONSE = %X, want 00C0000000", got)
	}
	if got := card.sent[4]; !bytes.Equal(got, []byte{0, 0xC0, 0, 0, 88}) {
		t.Errorf("second GET RESPONSE = %X, want 00C0000058", got)
	}
}

func TestExchangeWrongLe(t *testing.T) {
	card := &chainCard{part: 256, exactLe: 3}
	resp, err := Exchange(context.Background(), card, Command{INS: 0xCA, Data: []byte{1, 2, 3}, Le: 256})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(resp.Data, []byte{3, 2, 1}) || len(card.sent) != 2 || card.sent[1][len(card.sent[1])-1] != 3 {
		t.Fatalf("resp %X after %X", resp.Data, card.sent)
	}
}

type fixedCard []byte

func (f fixedCard) Transmit(context.Context, []byte) ([]byte, error) { return f, nil }

func TestExchangeErrors(t *testing.T) {
	ctx := context.Background()
	resp, err := Exchange(ctx, fixedCard{0x69, 0x83}, Command{INS: 0x20, P2: 0x80})
	if !errors.Is(err, hwerr.ErrPINBlocked) || resp.SW != 0x6983 {
		t.Errorf("6983: resp %+v, err %v", resp, err)
	}
	if _, err := Exchange(ctx, fixedCard{0x90}, Command{}); !errors.Is(err, hwerr.ErrProtocol) {
		t.Errorf("one-byte response: err %v, want protocol error", err)
	}
	if _, err := Exchange(ctx, fixedCard{0x61, 0x00}, Command{}); !errors.Is(err, hwerr.ErrProtocol) {
		t.Errorf("endless 61xx: err %v, want protocol error", err)
	}
	if _, err := Exchange(ctx, fixedCard{0x6A, 0x82}, Command{Data: make([]byte, 300)}); !errors.Is(err, hwerr.ErrNotFound) {
		t.Errorf("chaining refused: err %v, want the card's status", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Exchange(canceled, fixedCard{0x90, 0}, Command{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled context: err %v", err)
	}
}

// keepingCard keeps every command buffer it was given.
type keepingCard struct{ kept [][]byte }

func (k *keepingCard) Transmit(_ context.Context, b []byte) ([]byte, error) {
	k.kept = append(k.kept, b)
	return []byte{0x90, 0x00}, nil
}

func TestExchangeClearsCommand(t *testing.T) {
	k := &keepingCard{}
	pin := []byte("123456\xff\xff")
	if _, err := Exchange(context.Background(), k, Command{INS: 0x20, P2: 0x80, Data: pin}); err != nil {
		t.Fatal(err)
	}
	if len(k.kept) != 1 || !bytes.Equal(k.kept[0], make([]byte, 13)) {
		t.Errorf("command buffer after Exchange = %X, want 13 zero bytes", k.kept)
	}
}
