package ipc_test

import (
	"strconv"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
)

// TestErrorCodesDocumented checks that docs/api.md lists every error code
// with its HTTP status, and no code that does not exist.
func TestErrorCodesDocumented(t *testing.T) {
	rows, err := apitest.TableRows("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	known := map[ipc.Code]bool{}
	for _, c := range ipc.Codes() {
		known[c] = true
	}
	documented := map[ipc.Code]int{}
	for _, r := range rows {
		if len(r) != 4 {
			continue
		}
		status, err := strconv.Atoi(r[1])
		if err != nil || status < 400 {
			continue
		}
		c := ipc.Code(r[0])
		if !known[c] {
			t.Errorf("docs/api.md documents unknown code %q", c)
		}
		documented[c] = status
	}
	for c := range known {
		s, ok := documented[c]
		switch {
		case !ok:
			t.Errorf("code %q is not documented in docs/api.md", c)
		case s != c.HTTPStatus():
			t.Errorf("code %q: docs/api.md says %d, the code table %d", c, s, c.HTTPStatus())
		}
	}
}
