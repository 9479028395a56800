package client

import (
	"net/http"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
	"github.com/hwauthd/hwauthd/ipc/server"
)

// shared reports a pointer, map or slice of b that is also a's.
func shared(a, b reflect.Value) string {
	switch a.Kind() {
	case reflect.Pointer:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return a.Type().String()
		}
		return shared(a.Elem(), b.Elem())
	case reflect.Map:
		if a.IsNil() {
			return ""
		}
		if a.Pointer() == b.Pointer() {
			return a.Type().String()
		}
		for _, k := range a.MapKeys() {
			if s := shared(a.MapIndex(k), b.MapIndex(k)); s != "" {
				return s
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			return a.Type().String()
		}
		for i := range a.Len() {
			if s := shared(a.Index(i), b.Index(i)); s != "" {
				return s
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if s := shared(a.Field(i), b.Field(i)); s != "" {
				return a.Type().Field(i).Name + ": " + s
			}
		}
	}
	return ""
}

// TestCloneStatusSharesNothing: a status with every field set (new fields
// included, by reflection) is copied whole and shares nothing with its copy.
func TestCloneStatusSharesNothing(t *testing.T) {
	var st ipc.Status
	apitest.Fill(t, reflect.ValueOf(&st).Elem())
	c := cloneStatus(st)
	if !reflect.DeepEqual(st, c) {
		t.Fatalf("copy %+v differs from %+v", c, st)
	}
	if s := shared(reflect.ValueOf(st), reflect.ValueOf(c)); s != "" {
		t.Fatalf("the copy shares %s with the status it copies", s)
	}
}

// TestStatusAnswerNeverStale: the client returns what each answer says when
// the daemon's answer changes, and a caller changing the status it got does
// not change what the next caller gets for the same answer.
func TestStatusAnswerNeverStale(t *testing.T) {
	var version atomic.Value
	version.Store("one")
	c := New(apitest.Start(t, server.Config{}, []server.Route{{Method: "GET", Pattern: "/v1/status", Access: server.Anyone,
		Handler: func(w http.ResponseWriter, r *http.Request) error {
			n := 2
			return server.WriteJSON(w, 200, ipc.Status{Version: version.Load().(string), Backends: map[string]ipc.BackendStatus{"pcsc": {State: ipc.BackendUp, Readers: &n}}})
		}}}))
	for _, want := range []string{"one", "one", "two", "two", "one"} {
		version.Store(want)
		st, err := c.Status(ctx(t))
		if err != nil || st.Version != want || st.Backends["pcsc"].State != ipc.BackendUp || *st.Backends["pcsc"].Readers != 2 {
			t.Fatalf("Status = %+v, %v; want version %s, pcsc up with 2 readers", st, err, want)
		}
		// The caller's copy is its own.
		*st.Backends["pcsc"].Readers = 9
		st.Backends["tpm"] = ipc.BackendStatus{State: ipc.BackendDown}
		st.Version = "changed"
	}
}
