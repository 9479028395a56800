// Command fakehelper stands in for hwauthd-pam-helper in the tests of how
// pam_hwauth.so treats its helper. Its behaviour is the module argument
// mode=…; report=PATH names a file where it writes what it saw.
//
//	mode=report   writes its environment and open descriptors (fd=target)
//	              to PATH, asks
//	              for a secret, writes the answer's length, succeeds
//	mode=exit     exits with status 3 without a result
//	mode=hang     allows 200 ms of silence, writes its pid to PATH, hangs
//	mode=garbage  sends a frame of an unknown type
//	mode=huge     announces a frame larger than the protocol allows
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/pam/relay"
	"github.com/hwauthd/hwauthd/pam/signin"
)

func main() {
	f := os.NewFile(relay.ChannelFD, "pam")
	c := relay.New(f)
	st, err := c.ReadStart()
	if err != nil {
		os.Exit(2)
	}
	var mode, report string
	for _, a := range st.Args {
		if v, ok := strings.CutPrefix(a, "mode="); ok {
			mode = v
		}
		if v, ok := strings.CutPrefix(a, "report="); ok {
			report = v
		}
	}
	switch mode {
	case "report":
		fds, _ := os.ReadDir("/proc/self/fd")
		var names []string
		for _, fd := range fds {
			target, _ := os.Readlink("/proc/self/fd/" + fd.Name())
			names = append(names, fd.Name()+"="+target)
		}
		pin, err := c.PromptSecret("Secret: ")
		if err != nil {
			os.Exit(2)
		}
		text := fmt.Sprintf("env=%q\nfds=%s\nuser=%s op=%s\nanswer=%d\n", os.Environ(), strings.Join(names, " "), st.User, st.Op, len(pin))
		clear(pin)
		if os.WriteFile(report, []byte(text), 0o600) != nil {
			os.Exit(2)
		}
		c.Done(signin.Success)
	case "exit":
		os.Exit(3)
	case "hang":
		c.AllowSilence(200 * time.Millisecond)
		os.WriteFile(report, fmt.Appendf(nil, "%d", os.Getpid()), 0o600)
		time.Sleep(time.Hour)
	case "garbage":
		f.Write([]byte{'Z', 0, 0, 0, 0})
		time.Sleep(time.Hour)
	case "huge":
		f.Write([]byte{'C', 0, 1, 0, 0})
		time.Sleep(time.Hour)
	}
}
