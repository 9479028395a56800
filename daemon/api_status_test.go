package daemon

import (
	"reflect"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
)

// TestSameStatusSeesEveryField: the status answer is sent again only while
// sameStatus finds the status unchanged, so sameStatus must notice a change
// in any field, nested ones and new ones included: each field of a status
// with every field set is changed in turn (a pointer also made nil, a
// backend added), and each change must make the two differ.
func TestSameStatusSeesEveryField(t *testing.T) {
	full := func() ipc.Status {
		var st ipc.Status
		apitest.Fill(t, reflect.ValueOf(&st).Elem())
		return st
	}
	if a, b := full(), full(); !sameStatus(a, b) {
		t.Fatalf("equal statuses (pointers to equal values) differ: %+v", a)
	}
	changed := 0
	for n := 0; ; n++ {
		a, b := full(), full()
		left := n
		path, ok := changeField(t, reflect.ValueOf(&b).Elem(), "status", &left)
		if !ok {
			break
		}
		changed++
		if sameStatus(a, b) {
			t.Errorf("a change of %s is not seen: the old answer would be sent", path)
		}
	}
	if changed < 20 {
		t.Fatalf("only %d changes tried; the status has more fields", changed)
	}
}

// changeField changes the field numbered *left (in a walk of v), counting
// down; it returns the field's path, or false when v has no more fields.
func changeField(t *testing.T, v reflect.Value, path string, left *int) (string, bool) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			if p, ok := changeField(t, v.Field(i), path+"."+v.Type().Field(i).Name, left); ok {
				return p, true
			}
		}
		return "", false
	case reflect.Pointer:
		if *left == 0 {
			v.SetZero()
			return path + " (made nil)", true
		}
		*left--
		return changeField(t, v.Elem(), path, left)
	case reflect.Map:
		if *left == 0 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			k.SetString("another")
			v.SetMapIndex(k, e)
			return path + " (an entry added)", true
		}
		*left--
		for _, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			e.Set(v.MapIndex(k))
			if p, ok := changeField(t, e, path+"["+k.String()+"]", left); ok {
				v.SetMapIndex(k, e)
				return p, true
			}
		}
		return "", false
	}
	if *left > 0 {
		*left--
		return "", false
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(v.Int() + 1)
	case reflect.Uint, reflect.Uint64, reflect.Uint32:
		v.SetUint(v.Uint() + 1)
	default:
		t.Fatalf("changeField: %s is of kind %s; teach this test (and sameStatus) about it", path, v.Kind())
	}
	return path, true
}
