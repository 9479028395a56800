// Package vscbackend serves TPM virtual smart cards (R3) to the daemon: it
// opens the device's TPM, presents every card provisioned on it as an
// authenticator, keeps their records (TPM-wrapped key blobs, counters) in the
// device-local store, and carries out IT's provisioning: create, CSR,
// certificate import, delete.
package vscbackend

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hwauthd/hwauthd/device"
	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/store"
	"github.com/hwauthd/hwauthd/tpm"
)

// idPrefix starts the authenticator id of every virtual card.
const idPrefix = "vsc-"

// Backend is the TPM backend. Create it with New.
type Backend struct {
	cfg   tpm.Config
	reg   store.Store
	state store.DeviceState
	log   *slog.Logger

	mu     sync.Mutex
	tpm    *tpm.TPM // nil while the TPM is not connected
	info   tpm.Info
	lastOK time.Time     // when the TPM last answered
	up     chan struct{} // closed while connected, replaced when lost
	status device.Status
	host   device.Host
	cards  map[string]*Device // by card id
	first  device.FirstScan
	loaded bool // the cards were loaded from the store
	full   bool // the TPM refused a card for want of room (until one is deleted)

	kick chan struct{} // asks Run to reconnect now
	lost chan struct{} // tells Run the TPM stopped answering
}

var (
	_ device.Backend    = (*Backend)(nil)
	_ device.Enumerator = (*Backend)(nil)
)

// New returns a backend that opens the TPM when it runs. Cards' records
// live in state; reg is the registry, whose registrations of a card go
// when the card is deleted.
func New(cfg tpm.Config, reg store.Store, state store.DeviceState, log *slog.Logger) *Backend {
	return &Backend{cfg: cfg, reg: reg, state: state, log: log, cards: map[string]*Device{},
		up: make(chan struct{}), kick: make(chan struct{}, 1), lost: make(chan struct{}, 1),
		status: device.Status{State: device.StateDown, Detail: "starting"}}
}

// Name is "tpm".
func (b *Backend) Name() string { return "tpm" }

// IDPrefix is "vsc-".
func (b *Backend) IDPrefix() string { return idPrefix }

// Status reports whether the TPM is open, its manufacturer and card count.
func (b *Backend) Status() device.Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status
}

// Enumerated is closed once the first connection to the TPM presented the
// stored cards, or failed.
func (b *Backend) Enumerated() <-chan struct{} { return b.first.Enumerated() }

// loadCards presents every stored card of this device and removes TPM keys
// that no stored card uses any more (left by a crash during create).
func (b *Backend) loadCards(ctx context.Context, t *tpm.TPM) error {
	blobs, err := b.state.Cards(ctx)
	if err != nil {
		return fmt.Errorf("read virtual cards: %w", err)
	}
	var keep []*tpm.Card
	for id, blob := range blobs {
		var c tpm.Card
		if err := json.Unmarshal(blob, &c); err != nil {
			b.log.Error("virtual card record does not decode; left in place", "card", id, "err", err)
			continue
		}
		keep = append(keep, &c)
		err := t.CheckCard(ctx, &c)
		if errors.Is(err, hwerr.ErrRemoved) {
			// Deleted from the TPM, and the daemon stopped before the
			// registrations and the record went: finish the deletion.
			b.log.Warn("virtual card was deleted from the TPM; removing its registrations and record", "card", id)
			if err := b.forget(ctx, c.ID); err != nil {
				b.log.Error("finish deleting virtual card", "card", id, "err", err)
			}
			continue
		}
		if err != nil {
			b.log.Error("virtual card cannot be used on this device", "card", id, "err", err)
			continue
		}
		tries, err := t.Tries(ctx, &c)
		if err != nil {
			b.log.Error("virtual card counters do not read", "card", id, "err", err)
			continue
		}
		if _, err := b.attach(&c, tries); err != nil {
			b.log.Error("virtual card cannot be used on this device", "card", id, "err", err)
		}
	}
	if n, err := t.PruneOrphans(ctx, keep); err != nil {
		b.log.Warn("prune unused TPM keys", "err", err)
	} else if n > 0 {
		b.log.Info("removed TPM keys of virtual cards that were never stored", "count", n)
	}
	return nil
}

// attach presents a card as an authenticator.
func (b *Backend) attach(c *tpm.Card, tries tpm.Tries) (*Device, error) {
	key, err := device.ParseKey(keyID, c.PublicKey, c.Certificate)
	if err != nil {
		return nil, err
	}
	d := &Device{b: b, card: c, key: key, tries: tries}
	b.mu.Lock()
	b.cards[c.ID] = d
	host := b.host
	b.mu.Unlock()
	host.Attach(d)
	return d, nil
}

// save persists a card's record: when it is created and when a
// certificate is imported. PIN operations write nothing: the counters are
// the TPM's.
func (b *Backend) save(ctx context.Context, c *tpm.Card) error {
	blob, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.state.PutCard(ctx, c.ID, blob)
}

// device returns the card with the given id (card id, or authenticator id).
func (b *Backend) device(id string) (*Device, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, ok := b.cards[strings.TrimPrefix(id, idPrefix)]
	if !ok {
		return nil, fmt.Errorf("virtual smart card %q: %w", id, hwerr.ErrNotFound)
	}
	return d, nil
}

// Create provisions a new virtual card in the TPM and presents it.
func (b *Backend) Create(ctx context.Context, req device.CreateVirtualCard) (device.VirtualCard, error) {
	t, err := b.engine(ctx)
	if err != nil {
		return device.VirtualCard{}, err
	}
	existing, err := b.state.Cards(ctx)
	if err != nil {
		return device.VirtualCard{}, err
	}
	if err := t.CanCreate(len(existing)); err != nil {
		return device.VirtualCard{}, fmt.Errorf("%w: this device already holds %d virtual smart cards; delete one first", err, len(existing))
	}
	b.mu.Lock()
	full := b.full
	b.mu.Unlock()
	if st, err := t.State(ctx); full || (err == nil && st.Capacity.CardsLeft == 0) {
		return device.VirtualCard{}, fmt.Errorf("this device's TPM has no room for another virtual smart card (%d on it); delete an unused one: %w",
			len(existing), hwerr.ErrDeviceFull)
	}
	// The engine zeroes what it is given; the request wipes its own copy.
	card, att, err := t.CreateCard(ctx, tpm.CreateOptions{
		Label: req.Label, PIN: slices.Clone(req.PIN), PUK: slices.Clone(req.PUK),
		Algorithm: string(req.Algorithm), Attest: req.Attest, Nonce: req.Nonce, AdminKey: req.AdminKey,
	})
	b.done(t, err)
	if errors.Is(err, hwerr.ErrDeviceFull) {
		// The TPM's word beats the estimate, which is coarse near full.
		b.mu.Lock()
		b.full = true
		b.mu.Unlock()
		b.refreshStatus(ctx)
	}
	if err != nil {
		return device.VirtualCard{}, err
	}
	if err := b.save(ctx, card); err != nil {
		_ = t.DestroyCard(ctx, card)
		return device.VirtualCard{}, fmt.Errorf("store the new card: %w", err)
	}
	b.log.Info("virtual smart card created", "card", card.ID, "label", card.Label, "algorithm", card.Algorithm)
	d, err := b.attach(card, card.FreshTries())
	if err != nil {
		return device.VirtualCard{}, fmt.Errorf("present the new card: %w", err)
	}
	b.refreshStatus(ctx)
	out := d.describe()
	out.Attestation = att
	return out, nil
}

// List describes every card presented from this device.
func (b *Backend) List(ctx context.Context) ([]device.VirtualCard, error) {
	if _, err := b.engine(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	devs := slices.Collect(maps.Values(b.cards))
	b.mu.Unlock()
	out := make([]device.VirtualCard, 0, len(devs))
	for _, d := range devs {
		out = append(out, d.describe())
	}
	slices.SortFunc(out, func(a, b device.VirtualCard) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Get describes one card.
func (b *Backend) Get(ctx context.Context, id string) (device.VirtualCard, error) {
	d, err := b.device(id)
	if err != nil {
		return device.VirtualCard{}, err
	}
	return d.describe(), nil
}

// Delete destroys a card: its PIN and PUK indices go from the TPM (after
// which its key is unusable for good), then every registration of it
// (moving each user's default, with registration-removed events) and its
// record. It cannot be undone; a kept copy of the record opens nothing. A
// crash after the TPM step is completed at the next start (loadCards).
func (b *Backend) Delete(ctx context.Context, id string) error {
	t, err := b.engine(ctx)
	if err != nil {
		return err
	}
	d, err := b.device(id)
	if err != nil {
		return err
	}
	if err := d.destroy(ctx, t); err != nil {
		return err
	}
	b.mu.Lock()
	delete(b.cards, d.card.ID)
	b.full = false
	host := b.host
	b.mu.Unlock()
	host.Detach(d.id())
	b.refreshStatus(ctx)
	b.log.Info("virtual smart card deleted", "card", d.card.ID)
	return b.forget(ctx, d.card.ID)
}

// forget removes a deleted card's registrations and record
// (store.ForgetCard) and announces each registration removed.
func (b *Backend) forget(ctx context.Context, cardID string) error {
	removed, err := store.ForgetCard(ctx, b.reg, b.state, cardID, idPrefix+cardID)
	b.mu.Lock()
	host := b.host
	b.mu.Unlock()
	for _, r := range removed {
		b.log.Info("registration of a deleted virtual card removed", "user", r.Registration.User,
			"registration", r.Registration.ID, "card", cardID)
		host.Notify(device.Event{Type: device.EventRegistrationRemoved, User: r.Registration.User,
			Authenticator: r.Registration.AuthenticatorID, Registration: r.Registration.ID, Default: r.Default})
	}
	if err != nil {
		return fmt.Errorf("remove the deleted card's registrations and record: %w", err)
	}
	return nil
}

// CSR returns a certificate signing request (DER) signed in the TPM with
// the card's key (the PIN authorizes it and counts as a try when wrong).
func (b *Backend) CSR(ctx context.Context, id string, req device.CSRRequest) ([]byte, error) {
	d, err := b.device(id)
	if err != nil {
		return nil, err
	}
	return d.csr(ctx, req)
}

// ImportCertificate stores the certificate IT issued for the card; it must
// be for the card's own key (else hwerr.ErrInvalidInput).
func (b *Backend) ImportCertificate(ctx context.Context, id string, cert *x509.Certificate) (device.VirtualCard, error) {
	d, err := b.device(id)
	if err != nil {
		return device.VirtualCard{}, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	next := *d.card
	if err := tpm.ImportCertificate(&next, cert.Raw); err != nil {
		return device.VirtualCard{}, err
	}
	if err := b.save(ctx, &next); err != nil {
		return device.VirtualCard{}, err
	}
	*d.card = next
	d.key.Certificate = cert
	return d.describeLocked(), nil
}

// AttestationRequest starts the EK attestation exchange for a card: the
// TPM's EK certificate, the attestation key and its certification of the
// card key (tpm.TPM.AttestationRequest).
func (b *Backend) AttestationRequest(ctx context.Context, id string) (device.AttestationRequest, error) {
	d, err := b.device(id)
	if err != nil {
		return device.AttestationRequest{}, err
	}
	var req *device.AttestationRequest
	err = d.do(ctx, func(t *tpm.TPM) error {
		var err error
		req, err = t.AttestationRequest(ctx, d.card)
		return err
	})
	if err != nil {
		return device.AttestationRequest{}, err
	}
	return *req, nil
}

// ActivateAttestation opens a verifier's challenge with the TPM's EK and
// attestation key; the answer goes back to the verifier.
func (b *Backend) ActivateAttestation(ctx context.Context, id string, ch device.AttestationChallenge) ([]byte, error) {
	d, err := b.device(id)
	if err != nil {
		return nil, err
	}
	var answer []byte
	err = d.do(ctx, func(t *tpm.TPM) error {
		var err error
		answer, err = t.ActivateAttestation(ctx, ch)
		return err
	})
	return answer, err
}

// AdminChallenge opens an admin-key unblock of a card (tpm.TPM.AdminChallenge).
func (b *Backend) AdminChallenge(ctx context.Context, id string) (device.AdminChallenge, error) {
	d, err := b.device(id)
	if err != nil {
		return device.AdminChallenge{}, err
	}
	var ch device.AdminChallenge
	err = d.do(ctx, func(t *tpm.TPM) error {
		var err error
		ch, err = t.AdminChallenge(ctx, d.card)
		return err
	})
	return ch, err
}

// AdminUnblock unblocks a card with the admin key's responses to its
// challenge and sets newPIN (tpm.AdminUnblock).
func (b *Backend) AdminUnblock(ctx context.Context, id string, responses [2][]byte, newPIN []byte) error {
	d, err := b.device(id)
	if err != nil {
		return err
	}
	return d.do(ctx, func(t *tpm.TPM) error {
		err := t.AdminUnblock(ctx, d.card, responses, clone(newPIN))
		if err == nil {
			d.tries.PIN = d.card.FreshTries().PIN
		}
		return err
	})
}
