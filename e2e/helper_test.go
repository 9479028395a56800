package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/hwauthd/hwauthd/internal/testenv"
)

// helperEnv makes the test binary act as a plain API client (runHelper)
// instead of running tests: the tests start it under another uid to see the
// daemon through that user's peer credentials.
const helperEnv = "HWAUTHD_E2E_HELPER"

// call is one raw API request and, after it ran, its answer.
type call struct {
	Method string `json:"method"`
	Path   string `json:"path"`
	Body   string `json:"body,omitempty"`
	Status int    `json:"status,omitempty"`
	Answer string `json:"answer,omitempty"`
}

// runAs runs calls against socket from a process with the given uid and gid
// and returns them with their answers.
func runAs(t *testing.T, uid, gid uint32, socket string, calls []call) []call {
	t.Helper()
	in, _ := json.Marshal(calls)
	cmd := exec.Command(publicBinary(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+socket)
	cmd.Stdin = bytes.NewReader(in)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: []uint32{}}}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper as uid %d: %v: %s", uid, err, errOut.String())
	}
	var got []call
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("helper output: %v: %q", err, out.String())
	}
	return got
}

var (
	publicOnce sync.Once
	publicPath string
	publicErr  error
)

// publicBinary returns a copy of the test binary that other uids may run
// (go test builds it in a directory only root can enter).
func publicBinary(t testing.TB) string {
	t.Helper()
	publicOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hwauthd-e2e-public")
		if err != nil {
			publicErr = err
			return
		}
		testenv.AtExit(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			publicErr = err
			return
		}
		self, err := os.ReadFile("/proc/self/exe")
		if err != nil {
			publicErr = err
			return
		}
		publicPath = filepath.Join(dir, "e2e.test")
		publicErr = os.WriteFile(publicPath, self, 0o755)
	})
	if publicErr != nil {
		t.Fatalf("copy the test binary: %v", publicErr)
	}
	return publicPath
}

// runHelper is the helper process: it reads calls as JSON on stdin, makes
// them, and writes them back with their answers.
func runHelper() int {
	var calls []call
	if err := json.NewDecoder(os.Stdin).Decode(&calls); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c := unixHTTP(os.Getenv(helperEnv))
	for i := range calls {
		status, answer, err := do(c, calls[i].Method, calls[i].Path, calls[i].Body)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		calls[i].Status, calls[i].Answer = status, answer
	}
	_ = json.NewEncoder(os.Stdout).Encode(calls)
	return 0
}

// unixHTTP is an HTTP client over the daemon's socket.
func unixHTTP(socket string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", socket)
		},
	}}
}

// do makes one raw request and returns the status and body. For GET
// /v1/events it reads the stream up to the snapshot-done line only.
func do(c *http.Client, method, path, body string) (int, string, error) {
	req, err := http.NewRequest(method, "http://hwauthd"+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	if strings.HasPrefix(path, "/v1/events") && resp.StatusCode == http.StatusOK {
		var lines []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.Contains(sc.Text(), `"snapshot-done"`) {
				break
			}
		}
		return resp.StatusCode, strings.Join(lines, "\n"), sc.Err()
	}
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

// errorCode extracts the error code from an answer body.
func errorCode(answer string) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(answer), &e)
	return e.Error.Code
}
