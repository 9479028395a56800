package hwerr

import (
	"encoding/json"
	"testing"
)

// TestTries: the counter's forms, and its JSON (a number, null when
// unknown) both ways.
func TestTries(t *testing.T) {
	for _, tc := range []struct {
		tries     Tries
		json, str string
		known     bool
	}{
		{TriesLeft(3), "3", "3", true},
		{TriesLeft(0), "0", "0", true},
		{TriesLeft(-1), "null", "unknown", false},
		{Tries{}, "null", "unknown", false},
	} {
		b, err := json.Marshal(tc.tries)
		if err != nil || string(b) != tc.json || tc.tries.String() != tc.str || tc.tries.Known() != tc.known {
			t.Errorf("%#v: JSON %s, %v; String %q; Known %v", tc.tries, b, err, tc.tries.String(), tc.tries.Known())
		}
		var back Tries
		if err := json.Unmarshal(b, &back); err != nil || back != tc.tries {
			t.Errorf("%s decodes to %#v, %v; want %#v", b, back, err, tc.tries)
		}
	}
	if !TriesLeft(0).Exhausted() || TriesLeft(1).Exhausted() || (Tries{}).Exhausted() {
		t.Error("Exhausted is not exactly a known zero")
	}
	var bad Tries
	if err := json.Unmarshal([]byte(`"3"`), &bad); err == nil {
		t.Error("a string decoded as a count")
	}
}
