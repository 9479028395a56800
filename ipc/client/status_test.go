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

// fill sets every field reachable from v to a value other than its zero,
// allocating pointers, maps and slices; it fails on a kind it does not know.
func fill(t *testing.T, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem())
	case reflect.Struct:
		for i := range v.NumField() {
			fill(t, v.Field(i))
		}
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(t, k)
		fill(t, e)
		v.SetMapIndex(k, e)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0))
	default:
		t.Fatalf("fill: %s (%s) is not handled: teach fill and cloneStatus about it", v.Type(), v.Kind())
	}
}

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
	fill(t, reflect.ValueOf(&st).Elem())
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
