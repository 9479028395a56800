package device

import (
	"sync"
	"testing"
)

// TestFirstScan: the zero value is not done and its channel is open; Done,
// called any number of times and from several goroutines, closes the one
// channel every caller of Enumerated holds.
func TestFirstScan(t *testing.T) {
	var f FirstScan
	before := f.Enumerated()
	if f.IsDone() {
		t.Fatal("a new FirstScan is done")
	}
	select {
	case <-before:
		t.Fatal("the channel of a new FirstScan is closed")
	default:
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(f.Done)
	}
	wg.Wait()
	if !f.IsDone() {
		t.Fatal("not done after Done")
	}
	select {
	case <-before:
	default:
		t.Fatal("the channel taken before Done is still open")
	}
	if f.Enumerated() != before {
		t.Error("Enumerated returned another channel after Done")
	}
	f.Done() // again: no panic on a closed channel
}
