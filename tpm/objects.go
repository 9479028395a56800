package tpm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Persistent handles of card roots: hwauthd owns 0x81480000..0x814800FF in
// the owner's persistent range (TPM 2.0 Part 2 §7.5, 0x81000000-0x817FFFFF;
// 0x48 is 'H'), clear of the TCG-registered SRK (0x81000001) and EK
// (0x81010001) handles.
const (
	rootHandleBase  = tpm2.TPMHandle(0x81480000)
	rootHandleCount = 256
)

// root is a card's persistent storage key as found in the TPM.
type root struct {
	handle tpm2.NamedHandle
	public tpm2.TPMTPublic
}

// rootHandlesLocked lists the used persistent handles in hwauthd's range
// (TPM 2.0 Part 3 §30.2 TPM2_GetCapability, TPM_CAP_HANDLES).
func (t *TPM) rootHandlesLocked() ([]tpm2.TPMHandle, error) {
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapHandles,
		Property:      uint32(rootHandleBase),
		PropertyCount: rootHandleCount,
	}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("list persistent handles: %w", classify(err))
	}
	hs, err := rsp.CapabilityData.Data.Handles()
	if err != nil {
		return nil, fmt.Errorf("list persistent handles: %w: %v", hwerr.ErrProtocol, err)
	}
	var out []tpm2.TPMHandle
	for _, h := range hs.Handle {
		if h >= rootHandleBase && h < rootHandleBase+rootHandleCount {
			out = append(out, h)
		}
	}
	return out, nil
}

// freeRootHandleLocked finds an unused persistent handle in hwauthd's range.
func (t *TPM) freeRootHandleLocked() (tpm2.TPMHandle, error) {
	hs, err := t.rootHandlesLocked()
	if err != nil {
		return 0, err
	}
	used := map[tpm2.TPMHandle]bool{}
	for _, h := range hs {
		used[h] = true
	}
	for h := rootHandleBase; h < rootHandleBase+rootHandleCount; h++ {
		if !used[h] {
			return h, nil
		}
	}
	return 0, fmt.Errorf("no free persistent handle for a card: %w", hwerr.ErrLimit)
}

// createRootLocked creates a card's storage key as a child of the SRK and
// makes it persistent at a free handle (TPM 2.0 Part 3 §12.1 TPM2_Create,
// §28.5 TPM2_EvictControl). The private blob TPM2_Create returned is thrown
// away, so the key exists only as that persistent object: evicting it
// destroys it and everything wrapped under it.
func (t *TPM) createRootLocked() (root, error) {
	h, err := t.freeRootHandleLocked()
	if err != nil {
		return root{}, err
	}
	srk, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHOwner,
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t.tr)
	if err != nil {
		return root{}, fmt.Errorf("create storage root key: %w", classify(err))
	}
	defer t.flushLocked(srk.ObjectHandle)
	srkHandle := tpm2.AuthHandle{Handle: srk.ObjectHandle, Name: srk.Name, Auth: tpm2.PasswordAuth(nil)}
	created, err := tpm2.Create{ParentHandle: srkHandle, InPublic: tpm2.New2B(cardRootTemplate())}.Execute(t.tr)
	if err != nil {
		return root{}, fmt.Errorf("create card root key: %w", classify(err))
	}
	loaded, err := tpm2.Load{ParentHandle: srkHandle, InPrivate: created.OutPrivate, InPublic: created.OutPublic}.Execute(t.tr)
	clear(created.OutPrivate.Buffer)
	if err != nil {
		return root{}, fmt.Errorf("load card root key: %w", classify(err))
	}
	defer t.flushLocked(loaded.ObjectHandle)
	_, err = tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: loaded.ObjectHandle, Name: loaded.Name},
		PersistentHandle: h,
	}.Execute(t.tr)
	if err != nil {
		return root{}, fmt.Errorf("make card root key persistent: %w", classify(err))
	}
	pub, err := created.OutPublic.Contents()
	if err != nil {
		return root{}, fmt.Errorf("card root key: %w: %v", hwerr.ErrProtocol, err)
	}
	return root{handle: tpm2.NamedHandle{Handle: h, Name: loaded.Name}, public: *pub}, nil
}

// evictRootLocked destroys a card's persistent storage key
// (TPM 2.0 Part 3 §28.5 TPM2_EvictControl on a persistent handle).
func (t *TPM) evictRootLocked(r root) error {
	_, err := tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     r.handle,
		PersistentHandle: r.handle.Handle,
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("destroy card root key: %w", classify(err))
	}
	return nil
}

// errRootGone says that a card's storage key is not in this TPM (any more).
var errRootGone = fmt.Errorf("the virtual smart card was deleted from this device's TPM: %w", hwerr.ErrRemoved)

// readRootLocked finds the card's storage key at its persistent handle and
// checks that it is the same key (same name) the card was created under.
func (t *TPM) readRootLocked(c *Card) (root, error) {
	if c.DeviceID != t.deviceID {
		return root{}, errWrongDevice
	}
	h := tpm2.TPMHandle(c.RootHandle)
	if h < rootHandleBase || h >= rootHandleBase+rootHandleCount {
		return root{}, fmt.Errorf("card root handle %#x: %w", c.RootHandle, hwerr.ErrInvalidInput)
	}
	rsp, err := tpm2.ReadPublic{ObjectHandle: h}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return root{}, errRootGone
	}
	if err != nil {
		return root{}, fmt.Errorf("read card root key: %w", classify(err))
	}
	if !bytes.Equal(rsp.Name.Buffer, c.RootName) {
		return root{}, errRootGone
	}
	pub, err := rsp.OutPublic.Contents()
	if err != nil {
		return root{}, fmt.Errorf("card root key: %w: %v", hwerr.ErrProtocol, err)
	}
	return root{handle: tpm2.NamedHandle{Handle: h, Name: rsp.Name}, public: *pub}, nil
}

// errWrongDevice says that a card belongs to another device's TPM.
var errWrongDevice = fmt.Errorf("this virtual smart card was created on another device and works only there: %w",
	hwerr.ErrWrongDevice)

// loadLocked loads a card object under its root (TPM 2.0 Part 3 §12.2
// TPM2_Load). The TPM checks the blob's integrity with a key derived from
// the parent's seed, so a blob made under another parent, on this or another
// TPM, fails with TPM_RC_INTEGRITY: hwerr.ErrWrongDevice.
func (t *TPM) loadLocked(r root, public, private []byte) (tpm2.NamedHandle, error) {
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: r.handle.Handle, Name: r.handle.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: private},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](public),
	}.Execute(t.tr)
	switch {
	case errors.Is(err, tpm2.TPMRCIntegrity):
		return tpm2.NamedHandle{}, errWrongDevice
	case errors.Is(err, tpm2.TPMRCSize), errors.Is(err, tpm2.TPMRCInsufficient), errors.Is(err, tpm2.TPMRCValue):
		return tpm2.NamedHandle{}, fmt.Errorf("load card object: %w: %v", hwerr.ErrInvalidInput, err)
	case err != nil:
		return tpm2.NamedHandle{}, fmt.Errorf("load card object: %w", classify(err))
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}

// secretSession authorizes a use of an object whose authValue is derived
// from a PIN or PUK, or carries secret parameters, to or from the TPM: an
// HMAC session salted with the card root key (ECDH, TPM 2.0 Part 1 §19.6.13)
// so that neither the authValue nor an HMAC that could be brute-forced
// offline for it crosses the bus, with the parameter encryption enc
// (AES-128-CFB in one direction, Part 1 §21).
func secretSession(r root, auth []byte, enc tpm2.AuthOption) tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(auth),
		tpm2.Salted(r.handle.Handle, r.public), enc)
}

// encryptIn and encryptOut encrypt the first command or response parameter.
var (
	encryptIn  = tpm2.AESEncryption(128, tpm2.EncryptIn)
	encryptOut = tpm2.AESEncryption(128, tpm2.EncryptOut)
)

// keySession authorizes a use of a card's signing key with its authValue
// K: an unsalted HMAC session, enough because K holds 192 random bits (an
// HMAC over it cannot be brute-forced) and never crosses the bus.
func keySession(k []byte) tpm2.Session {
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, tpm2.Auth(k))
}
