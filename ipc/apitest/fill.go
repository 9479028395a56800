package apitest

import (
	"reflect"
	"testing"
	"time"
)

// Fill sets every field reachable from v to a value other than its zero:
// strings, numbers and booleans, pointers to filled values, maps to one
// filled entry, slices to one filled element, times to a time with a
// fraction of a second and a zone. It fails the test on a kind
// it does not know, so that a test walking a type by reflection (does a
// comparison or a copy see every field?) learns of a new kind of field.
func Fill(t testing.TB, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 3, 11, 45, 7, 123456789, time.FixedZone("", 3600))))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() { // unexported: not in JSON, not the caller's to set
				Fill(t, v.Field(i))
			}
		}
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		Fill(t, v.Elem())
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		Fill(t, k)
		Fill(t, e)
		v.SetMapIndex(k, e)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		Fill(t, v.Index(0))
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	default:
		t.Fatalf("Fill: a field of kind %s (%s); teach Fill, and the test using it, about it", v.Kind(), v.Type())
	}
}
