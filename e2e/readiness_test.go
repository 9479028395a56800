package e2e

import (
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
)

// TestFirstRequestSeesPresentCard starts the hwauthd program by hand while a
// card is already in a reader: the first request it answers lists the card,
// and the status shows the PC/SC backend up, not starting.
func TestFirstRequestSeesPresentCard(t *testing.T) {
	h := start(t)
	c := h.insert(0, pivcard.Options{}) // pcscd shows it: the daemon saw it
	h.stop()                            // the card stays in the reader

	started := h.spawn()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	var list []ipc.Authenticator
	for {
		var err error
		list, err = h.c.Authenticators(ctxT(t))
		if err == nil {
			break
		}
		// Until the process has created its socket, nothing answers.
		if apiCode(err) != "" || time.Since(started) > waitTimeout {
			t.Fatalf("first request: %v", err)
		}
		<-tick.C
	}
	found := false
	for _, a := range list {
		found = found || a.ID == c.id
	}
	if !found {
		t.Fatalf("the first answer of the started daemon lists %+v, not the card %s in the reader", list, c.id)
	}
	st, err := h.c.Status(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if pcsc := st.Backends["pcsc"]; pcsc.State != ipc.BackendUp || pcsc.Readers == nil || *pcsc.Readers != 2 {
		t.Errorf("pcsc backend %+v, want up with both readers", pcsc)
	}
}
