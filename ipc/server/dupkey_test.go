package server

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
)

// duplicateKeyByMaps is duplicateKey as it was before it compared keys in
// place (a map per object, every key decoded): the reference the fuzz
// target holds duplicateKey to.
func duplicateKeyByMaps(b []byte) (string, bool) {
	type object struct {
		keys      map[string]bool
		expectKey bool
	}
	var stack []*object // nil for an array
	top := func() *object {
		if len(stack) == 0 {
			return nil
		}
		return stack[len(stack)-1]
	}
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '{':
			stack = append(stack, &object{keys: map[string]bool{}, expectKey: true})
		case '[':
			stack = append(stack, nil)
		case '}', ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case ',':
			if o := top(); o != nil {
				o.expectKey = true
			}
		case '"':
			end := i + 1
			for end < len(b) && b[end] != '"' {
				if b[end] == '\\' {
					end++
				}
				end++
			}
			if end >= len(b) {
				return "", false
			}
			if o := top(); o != nil && o.expectKey {
				var key string
				if json.Unmarshal(b[i:end+1], &key) != nil {
					key = string(b[i+1 : end])
				}
				folded := strings.ToLower(strings.ToUpper(key))
				if o.keys[folded] {
					return key, true
				}
				o.keys[folded] = true
				o.expectKey = false
			}
			i = end
		}
	}
	return "", false
}

func TestDuplicateKeyManyKeys(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 40 {
		b.WriteString(`"k` + strings.Repeat("x", i) + `":1,`)
	}
	body := b.String()
	for _, tail := range []string{`"K":2}`, `"kXXX":2}`, `"k\u0058":2}`, `"new":2}`, `"ſ":1,"S":2}`} {
		got, dup := duplicateKey([]byte(body + tail))
		want, wantDup := duplicateKeyByMaps([]byte(body + tail))
		if got != want || dup != wantDup {
			t.Errorf("duplicateKey(…%s) = %q %v, want %q %v", tail, got, dup, want, wantDup)
		}
	}
}

// FuzzDuplicateKey holds duplicateKey, and the field lookup of
// unknownField, to what they answered when every key was decoded with
// encoding/json, on any bytes.
func FuzzDuplicateKey(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"b":{"a":2},"c":[{"a":1},{"a":2}]}`, `{"a":"x\\\"","a":2}`, `{"s":"{\"a\":1,\"a\":2}"}`,
		`[{"x":[1,{"y":1,"y":2}]}]`, `{"pin":"1","PIN":"2"}`, `{"s":"1","\u017f":"2"}`, `{"K":1,"\u212a":2}`,
		`{"key":"9a","algorithm":"ecdsa-sha256","digest":"AQID","pin":"1234"}`, `{"PiN":1,"p\u0069N":2}`,
		`{"ß":1,"SS":2,"ss":3}`, `{"a":1}]}{"a":2}`, `{"a\u0000":1,"A\u0000":2}`, "{\"\xff\":1,\"\xfe\":2}",
	} {
		f.Add([]byte(s))
	}
	types := []reflect.Type{reflect.TypeFor[ipc.SignRequest](), reflect.TypeFor[ipc.SignInRequest](),
		reflect.TypeFor[ipc.PINChangeRequest](), reflect.TypeFor[ipc.VirtualSmartcardCreateRequest]()}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, dup := duplicateKey(b)
		want, wantDup := duplicateKeyByMaps(b)
		if got != want || dup != wantDup {
			t.Fatalf("duplicateKey(%q) = %q %v, by maps %q %v", b, got, dup, want, wantDup)
		}
		// Every string literal in b as a key of the request types.
		for i := 0; i < len(b); i++ {
			if b[i] != '"' {
				continue
			}
			end := stringEnd(b, i)
			if end > len(b) {
				break
			}
			lit := b[i:end]
			for _, typ := range types {
				fs := fieldsOf(typ)
				gt, gok := fs.lookupLiteral(lit)
				wt, wok := fs.lookup(decodeKey(lit))
				if gt != wt || gok != wok {
					t.Fatalf("lookupLiteral(%q) in %v = %v %v, lookup of the decoded key %v %v", lit, typ, gt, gok, wt, wok)
				}
			}
			i = end - 1
		}
	})
}
