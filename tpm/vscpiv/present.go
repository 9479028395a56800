package vscpiv

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/pivcard"
	"github.com/hwauthd/hwauthd/pcsc/vreader"
)

// PresentConfig says how virtual cards are presented to pcscd.
type PresentConfig struct {
	// Readers is how many cards are presented (0 … vreader.MaxReaders);
	// 0 turns presentation off.
	Readers int
	// Socket is where hwauthd serves its readers to the reader driver.
	Socket string
	// Unpresented lists card ids kept API-only.
	Unpresented []string
	// Owners lists the users a card is registered to, who receive the
	// events of PIN attempts made through PC/SC; nil, or no owner, makes
	// them events without a user.
	Owners func(ctx context.Context, id string) ([]string, error)
}

// Presenter wraps the TPM backend: as its virtual cards attach, each is
// presented as a PIV card in one of hwauthd's readers (package vreader),
// until the readers are full; the rest stay API-only. Presentation runs
// beside the backend and never holds it up: if the socket cannot be
// created, the cards stay API-only and Status says why.
type Presenter struct {
	device.Backend
	cfg PresentConfig
	log *slog.Logger

	mu        sync.Mutex
	srv       *vreader.Server
	err       error          // why presentation is off, nil when it is on
	presented map[string]int // card id → reader index
	apiOnly   int            // attached cards not presented
}

// Present wraps b, the TPM backend.
func Present(b device.Backend, cfg PresentConfig, log *slog.Logger) *Presenter {
	return &Presenter{Backend: b, cfg: cfg, log: log, presented: map[string]int{}}
}

// IDPrefix is the wrapped backend's.
func (p *Presenter) IDPrefix() string {
	if ip, ok := p.Backend.(device.IDPrefixer); ok {
		return ip.IDPrefix()
	}
	return ""
}

var (
	_ device.IDPrefixer = (*Presenter)(nil)
	_ device.Enumerator = (*Presenter)(nil)
)

// Enumerated is the wrapped backend's, so the daemon's readiness still waits
// for the virtual cards; presentation itself never holds it up.
func (p *Presenter) Enumerated() <-chan struct{} {
	if e, ok := p.Backend.(device.Enumerator); ok {
		return e.Enumerated()
	}
	done := make(chan struct{})
	close(done)
	return done
}

// Run serves the readers and runs the wrapped backend until ctx ends.
func (p *Presenter) Run(ctx context.Context, host device.Host) error {
	if p.cfg.Readers > 0 {
		srv, err := vreader.Listen(p.cfg.Socket, p.cfg.Readers, nil, p.log)
		if err != nil {
			p.log.Warn("virtual cards are not presented to PC/SC applications", "err", err)
			p.setErr(err)
		} else {
			p.mu.Lock()
			p.srv = srv
			p.mu.Unlock()
			done := make(chan struct{})
			go func() {
				defer close(done)
				if err := srv.Serve(ctx); err != nil {
					p.log.Error("virtual card readers stopped", "err", err)
					p.setErr(err)
				}
			}()
			defer func() { <-done }()
		}
	} else {
		p.setErr(errors.New("present_readers is 0"))
	}
	return p.Backend.Run(ctx, presentingHost{Host: host, p: p})
}

func (p *Presenter) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

// Status is the wrapped backend's, saying how many cards PC/SC
// applications see.
func (p *Presenter) Status() device.Status {
	st := p.Backend.Status()
	if st.State != device.StateUp {
		return st
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var detail string
	switch {
	case p.err != nil:
		detail = fmt.Sprintf("virtual cards are API-only, not presented to PC/SC applications (%v)", p.err)
	default:
		detail = fmt.Sprintf("%d virtual cards presented to PC/SC applications as PIV cards (at most %d); %d API-only",
			len(p.presented), p.cfg.Readers, p.apiOnly)
	}
	if st.Detail != "" {
		detail = st.Detail + "; " + detail
	}
	st.Detail = detail
	return st
}

// attach presents a newly attached card.
func (p *Presenter) attach(host device.Host, d device.Device) {
	info := d.Info()
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.presented[info.ID]; ok {
		return
	}
	if p.srv == nil || slices.Contains(p.cfg.Unpresented, info.ID) {
		p.apiOnly++
		return
	}
	store := New(d, func(a Attempt) {
		for _, e := range p.attemptEvents(info.ID, a) {
			host.Notify(e)
		}
	})
	i, err := p.srv.Present(pivcard.NewApplet(store))
	if err != nil {
		p.apiOnly++
		p.log.Info("virtual card stays API-only", "card", info.ID, "err", err)
		return
	}
	p.presented[info.ID] = i
	p.log.Info("virtual card presented to PC/SC applications", "card", info.ID, "reader", readerName(i))
}

// detach withdraws a card that is gone.
func (p *Presenter) detach(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	i, ok := p.presented[id]
	if !ok {
		if p.apiOnly > 0 {
			p.apiOnly--
		}
		return
	}
	delete(p.presented, id)
	p.srv.Withdraw(i)
}

// readerName is the name pcscd gives reader i of hwauthd's readers.
func readerName(i int) string { return fmt.Sprintf("%s %02X 00", vreader.FriendlyName, i) }

// ownersTimeout bounds the registry lookup of a card's owners.
const ownersTimeout = 5 * time.Second

// attemptEvents words a PIN or PUK attempt through PC/SC for the event
// stream, one event for each user the card is registered to; the PIN itself
// never appears.
func (p *Presenter) attemptEvents(id string, a Attempt) []device.Event {
	p.mu.Lock()
	i, ok := p.presented[id]
	p.mu.Unlock()
	var reader string
	if ok {
		reader = readerName(i)
	}
	var wrong *hwerr.PINIncorrect
	reason := a.What + " accepted"
	switch {
	case errors.As(a.Err, &wrong):
		reason = fmt.Sprintf("wrong %s, %v tries left", a.What, wrong.RetriesLeft)
	case errors.Is(a.Err, hwerr.ErrPINBlocked), errors.Is(a.Err, hwerr.ErrPUKBlocked):
		reason = a.What + " blocked"
	case a.Err != nil:
		reason = a.What + " not checked: " + a.Err.Error()
	}
	e := device.Event{Type: device.EventPINAttempt, Authenticator: id, Reader: reader, Reason: reason}
	var owners []string
	if p.cfg.Owners != nil {
		ctx, cancel := context.WithTimeout(context.Background(), ownersTimeout)
		var err error
		owners, err = p.cfg.Owners(ctx, id)
		cancel()
		if err != nil {
			p.log.Warn("owners of a virtual card unknown; PIN attempt event goes to everyone", "card", id, "err", err)
		}
	}
	if len(owners) == 0 {
		return []device.Event{e}
	}
	events := make([]device.Event, 0, len(owners))
	for _, u := range owners {
		e.User = u
		events = append(events, e)
	}
	return events
}

// presentingHost passes the backend's calls on and presents or withdraws
// its cards.
type presentingHost struct {
	device.Host
	p *Presenter
}

func (h presentingHost) Attach(d device.Device) {
	h.Host.Attach(d)
	h.p.attach(h.Host, d)
}

func (h presentingHost) Detach(id string) {
	h.p.detach(id)
	h.Host.Detach(id)
}
