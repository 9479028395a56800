// Package softkey is a software CTAP2.1 authenticator behind CTAPHID framing.
// It exists so that the real libfido2 (through a test-only I/O interposer) can
// be exercised without a hidraw device: GetInfo, MakeCredential,
// GetAssertion, GetNextAssertion, ClientPIN with PIN/UV auth protocols 1 and
// 2, and Reset, with knobs for user presence, the signature counter and
// faults. See CTAP 2.1 §6 (commands) and §11.2 (CTAPHID).
package softkey

import (
	"context"
	"crypto/rand"
	"sync"
	"time"
)

// Presence says how the soft key answers a request for user presence.
type Presence int

// User presence modes.
const (
	// PresenceAuto grants presence at once.
	PresenceAuto Presence = iota
	// PresenceChannel waits until the test sends on Options.Touch.
	PresenceChannel
	// PresenceNever never grants presence; the wait ends with
	// CTAP2_ERR_USER_ACTION_TIMEOUT after Options.TouchTimeout.
	PresenceNever
)

// Fault is a one-shot fault injected into the next CTAPHID response.
type Fault int

// Faults.
const (
	// FaultNone injects nothing.
	FaultNone Fault = iota
	// FaultDrop drops the next response report.
	FaultDrop
	// FaultGarbage answers the next request with random bytes.
	FaultGarbage
	// FaultStall never answers the next request.
	FaultStall
)

// Options configure a Key. The zero value is a key with no PIN, automatic
// user presence, packed self attestation and PIN protocols [2, 1].
type Options struct {
	// AAGUID identifies the authenticator model; random when zero.
	AAGUID [16]byte
	// Presence selects how user presence is granted.
	Presence Presence
	// Touch grants one user presence per value received (PresenceChannel).
	Touch <-chan struct{}
	// TouchTimeout bounds a presence wait; 30 s when zero.
	TouchTimeout time.Duration
	// NoneAttestation returns the "none" attestation format instead of
	// packed self attestation.
	NoneAttestation bool
	// PINProtocols lists the advertised PIN/UV auth protocols, [2, 1] when
	// empty.
	PINProtocols []int
	// CTAP20 advertises only FIDO_2_0 without pinUvAuthToken, so clients
	// use getPinToken instead of getPinUvAuthTokenUsingPinWithPermissions.
	CTAP20 bool
}

// Key is one software authenticator. It is safe for concurrent use; every
// CTAP2 command runs under its lock, as on a single-threaded device.
type Key struct {
	opts     Options
	touching chan struct{}

	cmdMu     sync.Mutex // serializes CTAP2 commands; taken before mu
	mu        sync.Mutex
	fault     Fault
	faultSkip int
	counter   uint32
	creds     []*credential
	pin       *pinState
	next      *pendingAssertions
	aaguid    [16]byte
	protoSet  map[int]bool
	lastCID   uint32
}

// New returns a fresh key (no PIN, no credentials).
func New(opts Options) *Key {
	k := &Key{opts: opts, touching: make(chan struct{}, 16)}
	k.aaguid = opts.AAGUID
	if k.aaguid == ([16]byte{}) {
		rand.Read(k.aaguid[:])
	}
	if len(k.opts.PINProtocols) == 0 {
		k.opts.PINProtocols = []int{2, 1}
	}
	if k.opts.TouchTimeout == 0 {
		k.opts.TouchTimeout = 30 * time.Second
	}
	k.protoSet = map[int]bool{}
	for _, p := range k.opts.PINProtocols {
		k.protoSet[p] = true
	}
	k.pin = newPINState()
	return k
}

// AAGUID returns the key's AAGUID.
func (k *Key) AAGUID() [16]byte { return k.aaguid }

// TouchRequests delivers a value each time the key starts waiting for user
// presence, so a test can wait for that moment instead of sleeping.
func (k *Key) TouchRequests() <-chan struct{} { return k.touching }

// SetCounter forces the signature counter: the next signature carries n.
// Setting a lower value than before simulates a cloned authenticator.
func (k *Key) SetCounter(n uint32) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.counter = n - 1
}

// Counter returns the last signature counter value used.
func (k *Key) Counter() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.counter
}

// InjectFault arms a one-shot fault for the next CBOR response.
func (k *Key) InjectFault(f Fault) { k.InjectFaultAfter(f, 0) }

// InjectFaultAfter arms a one-shot fault for the CBOR response after the
// next skip ones (libfido2 sends getInfo when it opens a device, so a skip
// of 1 reaches the command that follows).
func (k *Key) InjectFaultAfter(f Fault, skip int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.fault, k.faultSkip = f, skip
}

func (k *Key) takeFault() Fault {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.faultSkip > 0 {
		k.faultSkip--
		return FaultNone
	}
	f := k.fault
	k.fault = FaultNone
	return f
}

// PowerCycle simulates removing and re-inserting the key: the PIN auth block
// (three consecutive wrong PINs) is lifted, the key agreement key and the
// PIN/UV auth token are regenerated. Credentials, the PIN and its retry
// counter persist.
func (k *Key) PowerCycle() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.pin.powerCycle()
	k.next = nil
}

// PINRetries returns the PIN retry counter.
func (k *Key) PINRetries() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.pin.retries
}

// nextCounterLocked advances and returns the signature counter.
func (k *Key) nextCounterLocked() uint32 {
	k.counter++
	return k.counter
}

// waitPresence waits for user presence according to the options. It returns
// a CTAP2 status: 0 when granted, errKeepaliveCancel when ctx ends, or
// errUserActionTimeout. keepalive is called periodically while waiting.
func (k *Key) waitPresence(ctx context.Context, keepalive func()) byte {
	if k.opts.Presence == PresenceAuto {
		return statusOK
	}
	select {
	case k.touching <- struct{}{}:
	default:
	}
	timeout := time.NewTimer(k.opts.TouchTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	keepalive()
	var touch <-chan struct{}
	if k.opts.Presence == PresenceChannel {
		touch = k.opts.Touch
	}
	for {
		select {
		case <-touch:
			return statusOK
		case <-ctx.Done():
			return errKeepaliveCancel
		case <-timeout.C:
			return errUserActionTimeout
		case <-tick.C:
			keepalive()
		}
	}
}
