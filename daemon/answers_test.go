package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/config"
	"github.com/hwauthd/hwauthd/daemon/daemontest"
	"github.com/hwauthd/hwauthd/ipc"
)

// The answers docs/api.md shows, checked against what the daemon answers:
// each test catches one kind of disagreement between the two.

// docExample returns the first indented JSON example after heading in
// docs/api.md, decoded into v.
func docExample(t *testing.T, heading string, v any) {
	t.Helper()
	b, err := os.ReadFile("../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("docs/api.md has no %q", heading)
	}
	var block []string
	for _, l := range strings.Split(rest, "\n") {
		if strings.HasPrefix(l, "    ") {
			block = append(block, l)
		} else if len(block) > 0 && l == "" {
			break
		}
	}
	if err := json.Unmarshal([]byte(strings.Join(block, "\n")), v); err != nil {
		t.Fatalf("the example under %q is not JSON: %v", heading, err)
	}
}

// jsonFields returns the JSON names of a struct type's fields.
func jsonFields(typ reflect.Type) []string {
	var out []string
	for i := range typ.NumField() {
		name, _, _ := strings.Cut(typ.Field(i).Tag.Get("json"), ",")
		out = append(out, name)
	}
	return out
}

// TestStatusAsDocumented: the status lists every backend the example shows,
// those turned off as disabled, and the example uses only fields the status
// has.
func TestStatusAsDocumented(t *testing.T) {
	var doc struct {
		Backends map[string]map[string]any `json:"backends"`
	}
	docExample(t, "### GET /v1/status", &doc)
	h := daemontest.New(t, func(c *config.Config) {
		c.PCSC.Enabled, c.PKCS11.Enabled, c.TPM.Enabled, c.FIDO.Enabled = false, false, false, false
	})
	st, err := h.Client("alice").Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fields := jsonFields(reflect.TypeFor[ipc.BackendStatus]())
	for name, example := range doc.Backends {
		if got, ok := st.Backends[name]; !ok || got.State != ipc.BackendDisabled {
			t.Errorf("status shows the disabled backend %s as %+v, %v; want disabled", name, got, ok)
		}
		for f := range example {
			if !slices.Contains(fields, f) {
				t.Errorf("the documented status of %s has %q, which the status has not", name, f)
			}
		}
	}
	if len(st.Backends) != len(doc.Backends) {
		t.Errorf("status lists %d backends, the documentation %d", len(st.Backends), len(doc.Backends))
	}
}

// TestLinkAnswersAsDocumented: making a link answers the link as stored
// (with its creation time); removing one that does not exist says so.
func TestLinkAnswersAsDocumented(t *testing.T) {
	h := daemontest.New(t)
	h.AddUser("alice")
	root, ctx := h.Client("root"), context.Background()
	made, err := root.Link(ctx, "alice", "email:alice@example.org")
	if err != nil {
		t.Fatal(err)
	}
	list, err := root.Links(ctx, "alice")
	if err != nil || len(list.Links) != 1 {
		t.Fatalf("links: %+v, %v", list, err)
	}
	if made.CreatedAt.IsZero() || !made.CreatedAt.Equal(list.Links[0].CreatedAt) || made.CreatedBy != "root" {
		t.Errorf("POST answered %+v, the list has %+v", made, list.Links[0])
	}
	err = root.Unlink(ctx, "alice", "upn:nobody@example.com")
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeNotFound || !strings.Contains(e.Message, "is not linked to alice") {
		t.Errorf("unlinking an identity that is not linked: %v", err)
	}
}

// TestEventsSinceFutureAsDocumented: a since beyond the latest event (from
// before a restart) is events_expired, saying what happened.
func TestEventsSinceFutureAsDocumented(t *testing.T) {
	h := daemontest.New(t)
	_, err := h.Client("root").Events(context.Background(), 1000)
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeEventsExpired || !strings.Contains(e.Message, "has not happened yet") {
		t.Errorf("events since 1000 on a fresh daemon: %v", err)
	}
}
