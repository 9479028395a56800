package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

func TestRequestRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := Request{ID: 7, Op: OpSign, Token: &TokenRef{Module: "/m.so", Slot: 3, Serial: "abc"},
		KeyID: []byte{1}, Algorithm: "ecdsa-sha256", Digest: make([]byte, 32), PIN: []byte("1234")}
	if err := WriteRequest(&buf, &in); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte(`"pin"`)) || bytes.Contains(buf.Bytes(), []byte("MTIzNA")) {
		t.Error("the PIN travels inside the JSON")
	}
	out, err := ReadRequest(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != 7 || out.Op != OpSign || *out.Token != *in.Token || string(out.PIN) != "1234" || out.NewPIN != nil || len(out.Digest) != 32 {
		t.Errorf("round trip: %+v", out)
	}
	out.Wipe()
	if !bytes.Equal(out.PIN, make([]byte, 4)) {
		t.Error("Wipe left the PIN")
	}
}

func TestResponseRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	in := Response{ID: 9, Tokens: []Token{{Module: "/m.so", Slot: 1, Label: "t", Keys: []Key{{ID: []byte{1}, Label: "auth"}}}}}
	if err := WriteResponse(&buf, &in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadResponse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if out.ID != 9 || len(out.Tokens) != 1 || out.Tokens[0].Keys[0].Label != "auth" {
		t.Errorf("round trip: %+v", out)
	}
}

func TestReadFrameLimits(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrame+1)
	if _, err := ReadFrame(bytes.NewReader(hdr[:])); !errors.Is(err, errFrameTooLarge) {
		t.Errorf("oversized frame: %v", err)
	}
	binary.BigEndian.PutUint32(hdr[:], 10)
	if _, err := ReadFrame(bytes.NewReader(append(hdr[:], 'x'))); err == nil {
		t.Error("truncated frame accepted")
	}
	if _, err := DecodeResponse([]byte(`{"id":0}`)); err == nil {
		t.Error("response without id or event accepted")
	}
}

func TestErrorClasses(t *testing.T) {
	for name, class := range classes {
		err := EncodeError(errorf(class)).Err()
		if !errors.Is(err, class) {
			t.Errorf("%s: decoded %v is not its class", name, err)
		}
	}
	err := EncodeError(&hwerr.PINIncorrect{What: "PUK", RetriesLeft: hwerr.TriesLeft(1)}).Err()
	var pi *hwerr.PINIncorrect
	if !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(1) || pi.What != "PUK" {
		t.Errorf("PINIncorrect: %v", err)
	}
	if err := EncodeError(errors.New("odd")).Err(); !errors.Is(err, hwerr.ErrProtocol) {
		t.Errorf("unclassed error: %v", err)
	}
	if err := (&Error{Class: "nonsense"}).Err(); !errors.Is(err, hwerr.ErrProtocol) {
		t.Errorf("unknown class: %v", err)
	}
}

func errorf(class error) error { return errors.Join(errors.New("op"), class) }

func FuzzDecodeResponse(f *testing.F) {
	f.Add([]byte(`{"id":1,"tokens":[{"module":"/m.so","slot":1,"keys":[{"id":"AQ==","algorithm":"ecc-p256"}]}]}`))
	f.Add([]byte(`{"id":0,"event":"slot","module":"/m.so"}`))
	f.Add([]byte(`{"id":2,"error":{"class":"pin_incorrect","retries_left":1}}`))
	f.Add([]byte(`{"id":3,"signature":"MEUCIQ=="}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		resp, err := DecodeResponse(body)
		if err != nil {
			return
		}
		if resp.ID == 0 && resp.Event == "" {
			t.Fatal("accepted a response that is neither answer nor event")
		}
		if resp.Error != nil && resp.Error.Err() == nil {
			t.Fatal("error decoded to nil")
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0, 0, 0, 2, '{', '}'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		body, err := ReadFrame(bytes.NewReader(in))
		if err == nil && len(body) != int(binary.BigEndian.Uint32(in)) {
			t.Fatal("body length differs from header")
		}
	})
}

func FuzzDecodeRequest(f *testing.F) {
	var buf bytes.Buffer
	_ = WriteRequest(&buf, &Request{ID: 1, Op: OpSetPIN, PIN: []byte("1234"), NewPIN: []byte("5678")})
	f.Add(buf.Bytes()[4:])
	f.Add([]byte{0, 0, 0, 2, '{', '}', 0, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 2, '{', '}', 0, 9})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeRequest(body)
		if err != nil {
			return
		}
		var again bytes.Buffer
		if err := WriteRequest(&again, req); err != nil {
			t.Fatalf("decoded request does not encode: %v", err)
		}
		back, err := ReadRequest(&again)
		if err != nil || !bytes.Equal(back.PIN, req.PIN) || !bytes.Equal(back.NewPIN, req.NewPIN) {
			t.Fatalf("secrets changed in a round trip: %v", err)
		}
	})
}
