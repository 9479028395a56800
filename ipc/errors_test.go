package ipc

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
)

func TestErrorEnvelopeRoundTrip(t *testing.T) {
	two := 2
	in := &Error{Code: CodePINIncorrect, Message: "wrong PIN, 2 tries left", RetriesLeft: hwerr.TriesLeft(two), Details: map[string]any{"what": "PIN"}}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	e := raw["error"]
	if e["code"] != "pin_incorrect" || e["retries_left"] != float64(2) || e["what"] != "PIN" || e["message"] != in.Message {
		t.Fatalf("envelope = %s", b)
	}
	var out Error
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.Code != in.Code || out.Message != in.Message || out.RetriesLeft != hwerr.TriesLeft(2) || out.Details["what"] != "PIN" {
		t.Fatalf("round trip = %+v", out)
	}
	if err := json.Unmarshal([]byte(`{"foo":1}`), &out); err == nil {
		t.Fatal("decoding a body without error object succeeded")
	}
}

func TestEveryCodeHasStatusAndHint(t *testing.T) {
	for _, c := range Codes() {
		if s := c.HTTPStatus(); s < 400 || s > 599 {
			t.Errorf("%s: status %d", c, s)
		}
		if c.Hint() == "" {
			t.Errorf("%s: no hint", c)
		}
	}
	if Code("nope").HTTPStatus() != http.StatusInternalServerError {
		t.Error("unknown code is not 500")
	}
}

func TestFromHW(t *testing.T) {
	tests := []struct {
		err     error
		code    Code
		retries int
	}{
		{fmt.Errorf("verify pin: %w", hwerr.ErrPINBlocked), CodePINBlocked, -1},
		{fmt.Errorf("verify pin: %w", &hwerr.PINIncorrect{What: "PIN", RetriesLeft: hwerr.TriesLeft(2)}), CodePINIncorrect, 2},
		{fmt.Errorf("verify: %w", &hwerr.PINIncorrect{RetriesLeft: hwerr.TriesLeft(-1)}), CodePINIncorrect, -1},
		{fmt.Errorf("connect: %w", hwerr.ErrUnavailable), CodeBackendUnavailable, -1},
		{fmt.Errorf("transmit: %w", hwerr.ErrRemoved), CodeAuthenticatorRemoved, -1},
		{fmt.Errorf("unblock: %w", hwerr.ErrPUKBlocked), CodePINBlocked, -1},
		{hwerr.ErrLockout, CodeLockout, -1},
	}
	for _, tt := range tests {
		got := FromHW(tt.err)
		if got == nil || got.Code != tt.code {
			t.Errorf("FromHW(%v) = %v, want %s", tt.err, got, tt.code)
			continue
		}
		if got.RetriesLeft != hwerr.TriesLeft(tt.retries) {
			t.Errorf("FromHW(%v) retries = %v, want %d", tt.err, got.RetriesLeft, tt.retries)
		}
	}
	if FromHW(errors.New("other")) != nil {
		t.Error("FromHW of a plain error is not nil")
	}
}

func TestErrorIsAsHW(t *testing.T) {
	one := 1
	var err error = fmt.Errorf("call: %w", &Error{Code: CodePINIncorrect, RetriesLeft: hwerr.TriesLeft(one)})
	var pi *hwerr.PINIncorrect
	if !errors.As(err, &pi) || pi.RetriesLeft != hwerr.TriesLeft(1) {
		t.Fatalf("errors.As PINIncorrect = %v", pi)
	}
	if errors.Is(err, hwerr.ErrPINBlocked) {
		t.Fatal("pin_incorrect Is ErrPINBlocked")
	}
	if !errors.Is(&Error{Code: CodePINBlocked}, hwerr.ErrPINBlocked) {
		t.Fatal("pin_blocked is not ErrPINBlocked")
	}
}

func FuzzErrorUnmarshal(f *testing.F) {
	for _, s := range []string{
		`{"error":{"code":"pin_incorrect","message":"wrong PIN","retries_left":2,"what":"PIN"}}`,
		`{"error":{"code":"busy"}}`, `{"error":null}`, `{"error":{"retries_left":"x"}}`, `[]`, `{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var e Error
		if err := json.Unmarshal(data, &e); err != nil {
			return
		}
		// What decodes must encode and decode to the same code and message.
		b, err := json.Marshal(&e)
		if err != nil {
			t.Fatalf("marshal %+v: %v", e, err)
		}
		var again Error
		if err := json.Unmarshal(b, &again); err != nil {
			t.Fatalf("re-decode %s: %v", b, err)
		}
		if again.Code != e.Code || again.Error() != e.Error() {
			t.Fatalf("round trip %+v -> %+v", e, again)
		}
	})
}
