//go:build linux && cgo

package timerslack

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestEveryThreadHasTheSlack: the threads the runtime started before the
// test (its monitor among them) and threads started during it all have
// Slack.
func TestEveryThreadHasTheSlack(t *testing.T) {
	// Start more threads: goroutines locked to their threads while
	// others run.
	var wg sync.WaitGroup
	hold := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			runtime.LockOSThread()
			<-hold
		})
	}
	defer func() { close(hold); wg.Wait() }()
	time.Sleep(0)
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("%d threads: the check would see none of the runtime's", len(tasks))
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + task.Name() + "/timerslack_ns")
		if os.IsNotExist(err) {
			continue // the thread ended meanwhile
		}
		if err != nil {
			t.Fatal(err)
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if time.Duration(ns) != Slack {
			t.Errorf("thread %s has a timer slack of %v, want %v", task.Name(), time.Duration(ns), Slack)
		}
	}
}
