package tpm

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Card keys and the TPM's object slots.
//
// A TPM holds few transient objects at a time: TPM_PT_HR_TRANSIENT_MIN is
// 3 on swtpm and the PC Client minimum, and the kernel's resource manager
// gives each /dev/tpmrm0 user 3. TPM2_Load of a card key needs two of them
// at once, the key and its parent (the persistent storage key, which the
// TPM reads into a slot for the command). So after its first TPM2_Load a
// card's key is saved (TPM2_ContextSave, TPM 2.0 Part 3 §28.2): an
// object's saved context loads again as often as wanted (TPM2_ContextLoad,
// Part 3 §28.3; Part 1 §30), into one slot and without its parent, until
// the TPM is reset (the context's integrity HMAC covers the TPM's reset
// count, Part 1 §30.3), after which the key is loaded from its parent
// again. A saved context is the key wrapped by the TPM for itself; it is no
// secret and opens nothing without the card's PIN, like the card record's
// own blob.
//
// Between operations the engine keeps up to heldKeys card keys loaded. A
// card whose key is not loaded flushes the least recently used one
// (TPM2_FlushContext) and loads its own saved context: every card keeps
// working however many sign in turn, and a card in use is never pushed out
// by one that is not.

// heldKeys is how many card keys stay loaded between operations: with the
// third slot free, a switch can load a saved context (one slot) and any
// command that reads the storage key into a slot (the PIN session's salt,
// TPM2_Create) has room. Operations that load objects of their own flush
// the held keys first (dropKeysLocked).
const heldKeys = 2

// savedKeys bounds how many cards' saved contexts are kept (a device holds
// Policy.MaxCards cards, 10 by default); the least recently used is
// forgotten beyond it and loads from its parent when it signs again.
const savedKeys = 64

// cachedKey is one card key known to the engine: its saved context and,
// while it is loaded, its handle.
type cachedKey struct {
	private []byte         // the card's KeyPrivate: the cache answers only for the blob it loaded
	name    tpm2.TPM2BName // the key's TPM name
	handle  tpm2.TPMHandle // its handle while loaded, 0 when not
	context []byte         // its saved TPMS_CONTEXT, nil when not saved
	used    uint64         // when it was last used, on keyCache.clock
}

// keyCache is the engine's card keys by their public area (Card.KeyPublic).
type keyCache struct {
	keys  map[string]*cachedKey
	clock uint64
}

// cardKeyLocked returns the card's key loaded: held already, loaded from
// its saved context, or loaded from its parent and saved for the next
// time. The least recently used key is flushed to make room.
func (t *TPM) cardKeyLocked(c *Card) (tpm2.NamedHandle, error) {
	t.keys.clock++
	k := t.keys.keys[string(c.KeyPublic)]
	if k != nil && !bytes.Equal(k.private, c.KeyPrivate) {
		// Another blob of the same public area: load what the record holds,
		// so that TPM2_Load checks it.
		t.forgetKeyLocked(c.KeyPublic)
		k = nil
	}
	if k != nil && k.handle != 0 {
		k.used = t.keys.clock
		return tpm2.NamedHandle{Handle: k.handle, Name: k.name}, nil
	}
	t.makeRoomLocked()
	if k != nil && k.context != nil {
		h, err := t.contextLoadLocked(k.context)
		var rc tpm2.TPMRC
		switch {
		case err == nil:
			t.claimHandleLocked(h)
			k.handle, k.used = h, t.keys.clock
			return tpm2.NamedHandle{Handle: h, Name: k.name}, nil
		case !errors.As(err, &rc):
			return tpm2.NamedHandle{}, err // no answer
		case rc.IsWarning():
			return tpm2.NamedHandle{}, fmt.Errorf("load card key: %w", classify(err))
		}
		// The TPM refuses the context (TPM_RC_INTEGRITY once it was reset
		// since the save): load the key from its parent.
		k.context = nil
	}
	h, err := t.loadLocked(c.KeyPublic, c.KeyPrivate)
	if err != nil {
		return h, err
	}
	if k == nil {
		k = t.addKeyLocked(c)
	}
	t.claimHandleLocked(h.Handle)
	k.name, k.handle, k.used = h.Name, h.Handle, t.keys.clock
	k.context = t.contextSaveLocked(h.Handle) // nil if refused: the next switch loads from the parent
	return h, nil
}

// addKeyLocked records a new card key, forgetting the least recently used
// one beyond savedKeys.
func (t *TPM) addKeyLocked(c *Card) *cachedKey {
	if t.keys.keys == nil {
		t.keys.keys = map[string]*cachedKey{}
	}
	if len(t.keys.keys) >= savedKeys {
		t.forgetKeyLocked([]byte(t.leastRecentLocked(false)))
	}
	k := &cachedKey{private: slices.Clone(c.KeyPrivate)}
	t.keys.keys[string(c.KeyPublic)] = k
	return k
}

// leastRecentLocked is the public area (as a map key) of the least
// recently used key, among the loaded ones with loaded set.
func (t *TPM) leastRecentLocked(loaded bool) string {
	var oldest string
	var at uint64
	for pub, k := range t.keys.keys {
		if loaded && k.handle == 0 {
			continue
		}
		if oldest == "" || k.used < at {
			oldest, at = pub, k.used
		}
	}
	return oldest
}

// makeRoomLocked flushes the least recently used loaded keys until a key
// can be loaded within heldKeys.
func (t *TPM) makeRoomLocked() {
	for t.loadedKeysLocked() >= heldKeys {
		k := t.keys.keys[t.leastRecentLocked(true)]
		t.flushLocked(k.handle)
		k.handle = 0
	}
}

// claimHandleLocked records that the TPM just gave out handle h: a key
// recorded at h was gone already (flushed by another program), and must
// not be flushed or used in the new one's place.
func (t *TPM) claimHandleLocked(h tpm2.TPMHandle) {
	for _, k := range t.keys.keys {
		if k.handle == h {
			k.handle = 0
		}
	}
}

func (t *TPM) loadedKeysLocked() int {
	n := 0
	for _, k := range t.keys.keys {
		if k.handle != 0 {
			n++
		}
	}
	return n
}

// dropKeysLocked flushes every loaded card key, keeping their saved
// contexts, for an operation that needs the object slots.
func (t *TPM) dropKeysLocked() {
	for _, k := range t.keys.keys {
		if k.handle != 0 {
			t.flushLocked(k.handle)
			k.handle = 0
		}
	}
}

// dropCardKeyLocked flushes the card's key if it is loaded, keeping its
// saved context.
func (t *TPM) dropCardKeyLocked(c *Card) {
	if k := t.keys.keys[string(c.KeyPublic)]; k != nil && k.handle != 0 {
		t.flushLocked(k.handle)
		k.handle = 0
	}
}

// forgetKeyLocked flushes the key with public area pub if it is loaded and
// forgets it with its saved context (a card deleted, or a record with
// another blob).
func (t *TPM) forgetKeyLocked(pub []byte) {
	k := t.keys.keys[string(pub)]
	if k == nil {
		return
	}
	if k.handle != 0 {
		t.flushLocked(k.handle)
	}
	delete(t.keys.keys, string(pub))
}

// contextSaveLocked saves the context of the loaded object h (TPM 2.0
// Part 3 §28.2 TPM2_ContextSave; the object stays loaded) and returns the
// TPMS_CONTEXT, or nil when the TPM refuses.
func (t *TPM) contextSaveLocked(h tpm2.TPMHandle) []byte {
	rsp, err := t.sendPlainLocked(tpm2.TPMCCContextSave, be.AppendUint32(nil, uint32(h)))
	if err != nil {
		return nil
	}
	return slices.Clone(rsp)
}

// contextLoadLocked loads a saved object context (TPM 2.0 Part 3 §28.3
// TPM2_ContextLoad) and returns its new handle.
func (t *TPM) contextLoadLocked(saved []byte) (tpm2.TPMHandle, error) {
	rsp, err := t.sendPlainLocked(tpm2.TPMCCContextLoad, saved)
	if err != nil {
		return 0, err
	}
	if len(rsp) != 4 {
		return 0, fmt.Errorf("TPM2_ContextLoad answer of %d bytes: %w", len(rsp), hwerr.ErrProtocol)
	}
	return tpm2.TPMHandle(be.Uint32(rsp)), nil
}

// errHeldLost says that a key or session the engine held was gone from the
// TPM: it was reset, or another program flushed it. The command was
// refused before any authorization was checked (a PIN was not tried).
var errHeldLost = fmt.Errorf("a key or session kept in the TPM is gone (the TPM was reset?): %w", hwerr.ErrUnavailable)

// notLoaded tells whether err is the TPM's answer that a handle given to
// it, in the handle area or as a session, references an object or session
// that is not loaded (TPM_RC_REFERENCE_H0..H6, TPM_RC_REFERENCE_S0..S6;
// TPM 2.0 Part 2 §6.6.3).
func notLoaded(err error) bool {
	var rc tpm2.TPMRC
	return errors.As(err, &rc) && rc >= tpm2.TPMRCReferenceH0 && rc <= tpm2.TPMRCReferenceS6
}

// heldLostLocked tells whether err says that something the engine holds
// is gone from the TPM; if so it forgets whatever is gone, so that the next
// command starts it afresh, and returns true. What is still loaded is kept
// (another program may have flushed one handle, not all).
func (t *TPM) heldLostLocked(err error) bool {
	if !notLoaded(err) {
		return false
	}
	loaded := map[tpm2.TPMHandle]bool{}
	for _, first := range []tpm2.TPMHandle{0x80000000, 0x02000000} { // TPM_HT_TRANSIENT, _LOADED_SESSION
		hs, lerr := t.listHandlesLocked(first)
		if lerr != nil {
			return false
		}
		for _, h := range hs {
			loaded[h] = true
		}
	}
	for _, k := range t.keys.keys {
		if !loaded[k.handle] {
			k.handle = 0
		}
	}
	if t.pin != nil && !loaded[t.pin.handle] {
		clear(t.pin.sessionKey)
		t.pin = nil
	}
	if t.sign != nil && !loaded[t.sign.handle] {
		t.sign = nil
	}
	return true
}
