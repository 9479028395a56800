package server

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestReadLogWipe(t *testing.T) {
	body := []byte(`{"pin":"12345678"}`)
	whole := []byte("POST /x HTTP/1.1\r\n\r\n" + string(body) + "GET /next")
	a := []byte("POST /x HTTP/1.1\r\n\r\n" + string(body[:5]))
	b := []byte(string(body[5:]) + "GET /next")
	var l readLog
	l.add(whole)
	l.add(a)
	l.add(b)
	l.wipe(body)
	for _, r := range [][]byte{whole, a, b} {
		if bytes.Contains(r, []byte("1234")) || bytes.Contains(r, []byte(`"pin`)) {
			t.Errorf("body left in %q", r)
		}
	}
	if !bytes.HasSuffix(whole, []byte("GET /next")) || !bytes.HasSuffix(b, []byte("GET /next")) {
		t.Errorf("the bytes after the body were touched: %q %q", whole, b)
	}
}

// TestBodyWipedWhereRead: after a body was decoded, and after a body the
// handler never read, no read of the connection still holds it.
func TestBodyWipedWhereRead(t *testing.T) {
	left := make(chan string, 2)
	check := func(r *http.Request) {
		reads := r.Context().Value(readLogKey{}).(*readLog)
		reads.mu.Lock()
		defer reads.mu.Unlock()
		var all []string
		for _, b := range reads.regions {
			all = append(all, string(b))
		}
		left <- strings.Join(all, "|")
	}
	routes := []Route{
		{Method: "POST", Pattern: "/v1/read", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			var v struct {
				PIN string `json:"pin"`
			}
			if err := DecodeJSON(r, &v); err != nil {
				return err
			}
			check(r)
			return WriteJSON(w, http.StatusOK, map[string]string{})
		}},
		{Method: "POST", Pattern: "/v1/unread", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
			// What wrap does after every handler that left its body.
			wipeUnreadBody(r)
			check(r)
			return WriteJSON(w, http.StatusOK, map[string]string{})
		}},
	}
	sock, _ := startServer(t, Config{}, routes)
	c := unixClient(sock)
	for _, path := range []string{"/v1/read", "/v1/unread"} {
		resp, err := c.Post("http://hwauthd"+path, "application/json", strings.NewReader(`{"pin":"31415926"}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if got := <-left; strings.Contains(got, "31415926") || !strings.Contains(got, "POST "+path) {
			t.Errorf("%s: the connection's reads hold the body, or were not seen: %q", path, got)
		}
	}
}
