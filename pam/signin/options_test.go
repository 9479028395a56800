package signin

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/hwauthd/hwauthd/ipc/client"
)

func TestParseArgs(t *testing.T) {
	cases := []struct {
		args    []string
		want    Options
		wantErr string
	}{
		{nil, DefaultOptions(), ""},
		{[]string{"socket=/tmp/h.sock", "timeout=5", "debug"}, Options{Socket: "/tmp/h.sock", InsertTimeout: 5 * time.Second, RequestTimeout: DefaultRequestTimeout, Debug: true}, ""},
		{[]string{"timeout=0"}, Options{Socket: client.DefaultSocketPath, RequestTimeout: DefaultRequestTimeout}, ""},
		{[]string{"timeout=-1"}, Options{}, "seconds"},
		{[]string{"timeout=99999"}, Options{}, "seconds"},
		{[]string{"timeout=abc"}, Options{}, "seconds"},
		{[]string{"socket=relative.sock"}, Options{}, "absolute"},
		{[]string{"socket"}, Options{}, "absolute"},
		{[]string{"debug=1"}, Options{}, "unknown argument"},
		{[]string{"sockt=/x"}, Options{}, "unknown argument"},
	}
	for _, tc := range cases {
		got, err := ParseArgs(tc.args)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("ParseArgs(%q) err = %v, want %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseArgs(%q) = %+v, %v; want %+v", tc.args, got, err, tc.want)
		}
	}
}

// FuzzParseArgs feeds arbitrary service-file arguments: no panic, and an
// accepted argument list yields an absolute socket and a bounded timeout.
func FuzzParseArgs(f *testing.F) {
	for _, s := range []string{"debug", "socket=/run/h.sock timeout=5", "timeout=", "socket==/x", "timeout=65535", "a=b=c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		if !utf8.ValidString(line) {
			return
		}
		o, err := ParseArgs(strings.Fields(line))
		if err != nil {
			return
		}
		if !strings.HasPrefix(o.Socket, "/") || o.InsertTimeout < 0 || o.InsertTimeout > 65535*time.Second {
			t.Fatalf("ParseArgs(%q) = %+v", line, o)
		}
	})
}
