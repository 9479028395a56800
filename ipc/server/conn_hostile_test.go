package server

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// echoRoute decodes {"n": …} and answers it with the uid of the
// connection's peer, so a test sees which request (and whose connection) an
// answer belongs to.
var echoRoute = Route{Method: "POST", Pattern: "/v1/echo", Access: Anyone, Handler: func(w http.ResponseWriter, r *http.Request) error {
	var v struct {
		N   string `json:"n"`
		PIN string `json:"pin"`
	}
	if err := DecodeJSON(r, &v); err != nil {
		return err
	}
	p, _ := PeerFromContext(r.Context())
	return WriteJSON(w, http.StatusOK, map[string]any{"n": v.N, "uid": p.UID})
}}

// post is a pipelinable POST of body to /v1/echo.
func post(body string, extra ...string) string {
	return fmt.Sprintf("POST /v1/echo HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n%s", strings.Join(extra, ""), len(body), body)
}

const getStatus1 = "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n"

// answer is one answer read from a raw connection.
type answer struct {
	status int
	body   string
	close  bool
}

// readAnswers reads n answers from br, failing on anything that is not a
// well-formed HTTP/1.1 answer.
func readAnswers(t *testing.T, br *bufio.Reader, n int) []answer {
	t.Helper()
	var got []answer
	for len(got) < n {
		resp, err := http.ReadResponse(br, &http.Request{Method: "POST"})
		if err != nil {
			t.Fatalf("after %d answers: not a well-formed HTTP answer: %v", len(got), err)
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("answer %d: body: %v", len(got)+1, err)
		}
		if resp.ProtoMajor != 1 || resp.ProtoMinor != 1 {
			t.Errorf("answer %d: %s", len(got)+1, resp.Proto)
		}
		got = append(got, answer{resp.StatusCode, string(b), resp.Close})
	}
	return got
}

// TestConnHostileRequests sends what a hostile or broken local client may
// send and checks that each gets a clear answer in the envelope (or a plain
// end of the connection where nothing can be answered), that a request the
// server cannot frame ends its connection, that bytes after a body are only
// ever read as the next request, and that the server keeps serving.
func TestConnHostileRequests(t *testing.T) {
	sock, _ := startServer(t, Config{MaxBodyBytes: 1024}, []Route{statusRoute, echoRoute})
	long := strings.Repeat("a", maxHeaderBytes)
	cases := []struct {
		name string
		send string
		// want lists the answers as "status code" ("200 b" for the echo of
		// n=b, "200 ok" for status); closed: the connection ends after them.
		want   []string
		closed bool
	}{
		{"pipelined", post(`{"n":"a"}`) + getStatus1 + post(`{"n":"b"}`), []string{"200 a", "200 ok", "200 b"}, false},
		{"chunked", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"n\"\r\n5\r\n:\"c\"}\r\n0\r\n\r\n" + getStatus1,
			[]string{"200 c", "200 ok"}, false},
		// Transfer-Encoding wins over Content-Length (RFC 9112 6.3), as in
		// net/http: the 3 bytes Content-Length claims must not end the
		// body early and turn its rest into a request of its own.
		{"chunked and content-length", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"n\":\"d\"}\r\n0\r\n\r\n" + getStatus1,
			[]string{"200 d", "200 ok"}, false},
		{"two content-lengths", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\nContent-Length: 8\r\n\r\n{\"n\":\"e\"}" + getStatus1,
			[]string{"400 bad_request"}, true},
		{"negative content-length", post("", "Content-Length: -9\r\n") + getStatus1, []string{"400 bad_request"}, true},
		{"overflowing content-length", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 184467440737095516160\r\n\r\n{}" + getStatus1,
			[]string{"400 bad_request"}, true},
		{"content-length with sign", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: +9\r\n\r\n{\"n\":\"e\"}" + getStatus1,
			[]string{"400 bad_request"}, true},
		{"unknown transfer-encoding", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n{}" + getStatus1,
			[]string{"400 bad_request"}, true},
		{"overflowing chunk size", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\n{}\r\n0\r\n\r\n" + getStatus1,
			[]string{"400 bad_request"}, true},
		{"chunk without its CRLF", "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n" + getStatus1,
			[]string{"400 bad_request"}, true},
		// The bytes after a body are the next request, never part of this one.
		{"bytes after the body", post(`{"n":"f"}`) + "BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1,
			[]string{"200 f", "405 method_not_allowed", "200 ok"}, false},
		{"body over the limit", post(`{"n":"`+strings.Repeat("g", 2048)+`"}`) + getStatus1, []string{"413 too_large"}, true},
		{"GET with a body", "GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 9\r\n\r\n{\"n\":\"h\"}" + getStatus1,
			[]string{"200 ok", "200 ok"}, false},
		{"HTTP/1.0", "GET /v1/status HTTP/1.0\r\n\r\n" + getStatus1, []string{"200 ok"}, true},
		{"HTTP/1.0 keep-alive", "GET /v1/status HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + getStatus1, []string{"200 ok"}, true},
		{"Connection: close", "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" + getStatus1, []string{"200 ok"}, true},
		{"HTTP/2 request line", "GET /v1/status HTTP/2.0\r\nHost: x\r\n\r\n" + getStatus1, []string{"505 bad_request"}, true},
		{"HTTP/2 preface", "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + getStatus1, []string{"505 bad_request"}, true},
		{"HTTP/0.9", "GET /v1/status\r\n\r\n", []string{"400 bad_request"}, true},
		{"h2c upgrade ignored", "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n" + getStatus1,
			[]string{"200 ok", "200 ok"}, false},
		{"websocket upgrade ignored", "GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" + getStatus1,
			[]string{"200 ok", "200 ok"}, false},
		{"unknown method", "BREW /v1/status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"405 method_not_allowed", "200 ok"}, false},
		{"CONNECT", "CONNECT hwauthd:80 HTTP/1.1\r\nHost: hwauthd:80\r\n\r\n" + getStatus1, []string{"404 not_found", "200 ok"}, false},
		{"OPTIONS *", "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"400 bad_request", "200 ok"}, false},
		{"absolute-form", "GET http://elsewhere/v1/status HTTP/1.1\r\nHost: elsewhere\r\n\r\n" + getStatus1, []string{"200 ok", "200 ok"}, false},
		{"dot-dot path", "GET /v1/x/../status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"400 bad_request", "200 ok"}, false},
		{"escaped dot-dot path", "GET /v1/x/%2e%2e/status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"404 not_found", "200 ok"}, false},
		{"double slash", "GET //v1/status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"400 bad_request", "200 ok"}, false},
		{"relative path", "GET v1/status HTTP/1.1\r\nHost: x\r\n\r\n" + getStatus1, []string{"400 bad_request"}, true},
		{"NUL in a header value", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n" + getStatus1, []string{"400 bad_request"}, true},
		{"control byte in a header name", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX\x01A: b\r\n\r\n" + getStatus1, []string{"400 bad_request"}, true},
		{"folded header", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n" + getStatus1, []string{"200 ok", "200 ok"}, false},
		{"two Host headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n" + getStatus1, []string{"400 bad_request"}, true},
		{"header line over the limit", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX-A: " + long + "\r\n\r\n", []string{"413 too_large"}, true},
		{"request line over the limit", "GET /v1/" + long + " HTTP/1.1\r\nHost: x\r\n\r\n", []string{"413 too_large"}, true},
		{"Expect other than 100-continue", post(`{"n":"i"}`, "Expect: 200-ok\r\n") + getStatus1, []string{"417 bad_request"}, true},
		// An HTTP/1.0 client knows no interim answers (RFC 9110 10.1.1).
		{"Expect: 100-continue from HTTP/1.0", strings.Replace(post(`{"n":"k"}`, "Expect: 100-continue\r\n"), "HTTP/1.1", "HTTP/1.0", 1),
			[]string{"200 k"}, true},
		{"Expect: 100-continue with the body sent", post(`{"n":"j"}`, "Expect: 100-continue\r\n") + getStatus1,
			[]string{"100", "200 j", "200 ok"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, sock)
			// The client writes and reads at once: a server that stops
			// reading must not block the test on a full socket.
			go func() { _, _ = io.WriteString(c, tc.send) }()
			br := bufio.NewReader(c)
			var got []string
			if tc.want[0] == "100" {
				line, err := br.ReadString('\n')
				if err != nil || !strings.HasPrefix(line, "HTTP/1.1 100 ") {
					t.Fatalf("interim answer: %q %v", line, err)
				}
				if _, err := br.ReadString('\n'); err != nil {
					t.Fatal(err)
				}
				got = append(got, "100")
			}
			answers := readAnswers(t, br, len(tc.want)-len(got))
			for i, a := range answers {
				got = append(got, summarize(a))
				if i == len(answers)-1 && tc.closed && !a.close {
					t.Errorf("the last answer has no Connection: close")
				}
			}
			if strings.Join(got, ", ") != strings.Join(tc.want, ", ") {
				t.Errorf("answers %q, want %q", got, tc.want)
			}
			if !tc.closed {
				// Nothing more was sent: the connection waits, open.
				_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)) // a closing server closes at once; this only bounds the wait
				if _, err := br.Peek(1); !isTimeout(err) {
					t.Errorf("connection after the answers: %v, want it open and waiting", err)
				}
			} else if _, err := br.Peek(1); !errors.Is(err, io.EOF) {
				t.Errorf("after the answers: %v, want the connection closed (EOF)", err)
			}
		})
	}
	if status := getStatus(sock); status != http.StatusOK {
		t.Fatalf("status after the hostile requests: %d", status)
	}
}

// summarize is "status code" for an error envelope, "status n" for an echo,
// "status ok" for status.
func summarize(a answer) string {
	var v struct {
		N     string `json:"n"`
		OK    string `json:"ok"`
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(a.body), &v)
	switch {
	case v.Error.Code != "":
		return fmt.Sprintf("%d %s", a.status, v.Error.Code)
	case v.OK != "":
		return fmt.Sprintf("%d ok", a.status)
	case v.N != "":
		return fmt.Sprintf("%d %s", a.status, v.N)
	}
	return fmt.Sprintf("%d %q", a.status, a.body)
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestConnHugeBodyNotRead: a body that claims far more than the limit is
// refused after at most the limit (and the wipe's second look) was read:
// the answer arrives while the client has sent only a few KiB of it.
func TestConnHugeBodyNotRead(t *testing.T) {
	sock, _ := startServer(t, Config{MaxBodyBytes: 1024}, []Route{statusRoute, echoRoute})
	for _, head := range []string{
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1099511627776\r\n\r\n",
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n10000000000\r\n",
	} {
		c, br := rawExchange(t, sock, head+`{"pin":"`+strings.Repeat("1", 4096))
		a := readAnswers(t, br, 1)[0]
		if got := summarize(a); got != "413 too_large" || !a.close {
			t.Fatalf("%q: %s close %v", head, got, a.close)
		}
		// The server drops what follows for a while, then closes.
		if _, err := io.WriteString(c, strings.Repeat("1", 4096)); err != nil {
			t.Fatalf("the refused body's rest: %v", err)
		}
		if _, err := br.Peek(1); !errors.Is(err, io.EOF) {
			t.Fatalf("after the answer: %v, want EOF", err)
		}
	}
}

// TestConnBodyCutShort: a client that ends its side in the middle of a body
// gets bad_request and the end of the connection, never a handler working
// on half a body.
func TestConnBodyCutShort(t *testing.T) {
	sock, _ := startServer(t, Config{}, []Route{statusRoute, echoRoute})
	for _, text := range []string{
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{\"n\":\"a\"}",
		"POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n9\r\n{\"n\":\"a\"}\r\n",
	} {
		c, br := rawExchange(t, sock, text)
		if err := c.(*net.UnixConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		a := readAnswers(t, br, 1)[0]
		if got := summarize(a); got != "400 bad_request" || !a.close {
			t.Fatalf("%q: %s close %v", text, got, a.close)
		}
		if _, err := br.Peek(1); !errors.Is(err, io.EOF) {
			t.Fatalf("after the answer: %v, want EOF", err)
		}
	}
}

// TestConnPeerPerConnection: peer credentials are read once per connection
// and every request on it, pipelined or not, is served as that peer; the
// requests of two connections interleaved never see each other's.
func TestConnPeerPerConnection(t *testing.T) {
	var next uint32 = 1000
	var mu = make(chan struct{}, 1)
	sock, _ := startServer(t, Config{PeerOf: func(net.Conn) (Peer, error) {
		mu <- struct{}{}
		defer func() { <-mu }()
		next++
		return Peer{UID: next, GID: next}, nil
	}}, []Route{statusRoute, echoRoute})
	var conns [2]*bufio.Reader
	var raw [2]net.Conn
	for i := range conns {
		raw[i], conns[i] = rawExchange(t, sock, post(fmt.Sprintf(`{"n":"%d-0"}`, i)))
	}
	uids := [2]string{}
	for round := range 3 {
		for i := range conns {
			if round > 0 {
				// Two requests in one write, the second's head split.
				text := post(fmt.Sprintf(`{"n":"%d-%d"}`, i, round))
				if _, err := io.WriteString(raw[i], text); err != nil {
					t.Fatal(err)
				}
			}
			a := readAnswers(t, conns[i], 1)[0]
			var v struct {
				N   string `json:"n"`
				UID json.Number
			}
			if err := json.Unmarshal([]byte(a.body), &v); err != nil || v.N != fmt.Sprintf("%d-%d", i, round) {
				t.Fatalf("connection %d round %d: %q %v", i, round, a.body, err)
			}
			if uids[i] == "" {
				uids[i] = v.UID.String()
			} else if uids[i] != v.UID.String() {
				t.Fatalf("connection %d: uid %s, then %s", i, uids[i], v.UID)
			}
		}
	}
	if uids[0] == uids[1] {
		t.Fatalf("two connections served as the same uid %s", uids[0])
	}
}

// TestHeadFloodMemoryBounded: one user's share of connections (32), each
// sending a request head of a mebibyte in tiny distinct headers (which the
// header parser turns into a map of some 20 times that size), costs the
// server a few MiB in all, not hundreds: each head is refused once it
// passes the head limit. What the server allocates for the heads bounds its
// peak memory for them.
func TestHeadFloodMemoryBounded(t *testing.T) {
	sock, _ := startServer(t, Config{}, []Route{statusRoute})
	var sb strings.Builder
	sb.WriteString("GET /v1/status HTTP/1.1\r\nHost: x\r\n")
	for i := 0; sb.Len() < 1<<20-100; i++ {
		fmt.Fprintf(&sb, "%x:\r\n", i)
	}
	sb.WriteString("\r\n")
	head := []byte(sb.String()) // written as is: io.WriteString would copy it per connection
	const conns = DefaultMaxConnsPerUser
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var wg sync.WaitGroup
	answers := make(chan string, conns)
	for range conns {
		wg.Go(func() {
			c, err := net.Dial("unix", sock)
			if err != nil {
				answers <- err.Error()
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			go func() { _, _ = c.Write(head) }()
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				answers <- err.Error()
				return
			}
			resp.Body.Close()
			answers <- resp.Status
		})
	}
	wg.Wait()
	runtime.ReadMemStats(&after)
	close(answers)
	for a := range answers {
		if a != "413 Request Entity Too Large" {
			t.Errorf("answer to a 1 MiB head: %s", a)
		}
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 32<<20 {
		t.Errorf("%d heads of 1 MiB in tiny headers made the server allocate %d MiB", conns, alloc>>20)
	}
	t.Logf("%d heads: %d KiB allocated", conns, (after.TotalAlloc-before.TotalAlloc)>>10)
}
