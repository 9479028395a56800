package main

import (
	"strings"
	"testing"
)

// TestIDPrefixes: a unique prefix of an id, with or without its backend
// prefix, stands for the id; an ambiguous one is a usage error naming the
// candidates.
func TestIDPrefixes(t *testing.T) {
	f, hw := setup(t)
	if code, out, errOut := hw("", "show", "piv"); code != exitOK || !strings.Contains(out, "Kind:     smartcard") {
		t.Errorf("show piv: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut := hw("", "show", "1")
	if code != exitUsage || !strings.Contains(errOut, `"1" is the start of 2 authenticator ids (piv-1, vsc-1)`) {
		t.Errorf("show 1: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := hw("", "signout", "ses-"); code != exitUsage || !strings.Contains(errOut, "2 session ids") {
		t.Errorf("signout ses-: exit %d\n%s", code, errOut)
	}
	if code, out, errOut := hw("", "signout", "b"); code != exitOK || !strings.Contains(out, "session ses-b ended") || f.state.signedOut != "ses-b" {
		t.Errorf("signout b: exit %d, signed out %q\n%s%s", code, f.state.signedOut, out, errOut)
	}
	if code, out, errOut := hw("", "--json", "default", "2"); code != exitOK || !strings.Contains(out, `"default": "reg-2"`) {
		t.Errorf("default 2: exit %d\n%s%s", code, out, errOut)
	}
	// What matches nothing goes to the daemon as typed.
	if code, _, errOut := hw("", "show", "fido-9"); code != exitNotFound || !strings.Contains(errOut, `"fido-9"`) {
		t.Errorf("show fido-9: exit %d\n%s", code, errOut)
	}
}

// TestIDCompletion: ids complete from the daemon, with their labels.
func TestIDCompletion(t *testing.T) {
	_, hw := setup(t)
	_, out, _ := hw("", "__complete", "pin", "verify", "")
	for _, want := range []string{"piv-1\tAlice", "vsc-1\tlaptop", ":4"} {
		if !strings.Contains(out, want) {
			t.Errorf("completion of pin verify lacks %q:\n%s", want, out)
		}
	}
	_, out, _ = hw("", "__complete", "vsc", "delete", "v")
	if !strings.Contains(out, "vsc-1\tlaptop") || strings.Contains(out, "piv-1") {
		t.Errorf("completion of vsc delete v:\n%s", out)
	}
	_, out, _ = hw("", "__complete", "unregister", "")
	if !strings.Contains(out, "reg-1\twork card") || !strings.Contains(out, "reg-2\tlaptop") {
		t.Errorf("completion of unregister:\n%s", out)
	}
}

// TestOneHint: a usage error whose message names the help gets no second
// hint after it.
func TestOneHint(t *testing.T) {
	_, hw := setup(t)
	_, _, errOut := hw("", "pin", "verify")
	if strings.Count(errOut, "--help") != 1 || !strings.Contains(errOut, "see hwauthctl pin verify --help") {
		t.Errorf("pin verify without an id:\n%s", errOut)
	}
	_, _, errOut = hw("", "frobnicate")
	if !strings.Contains(errOut, "next: see hwauthctl --help") {
		t.Errorf("unknown command:\n%s", errOut)
	}
}
