package tpm

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Persistent handles: hwauthd owns 0x81480000..0x814800FF in the owner's
// persistent range (TPM 2.0 Part 2 §7.5, 0x81000000-0x817FFFFF; 0x48 is
// 'H'), clear of the TCG-registered SRK (0x81000001) and EK (0x81010001)
// handles. The first is hwauthd's storage key; earlier versions kept one
// storage key per card in the rest, which PruneOrphans removes.
const (
	storageKeyHandle  = tpm2.TPMHandle(0x81480000)
	persistentHandles = 256
	legacyRootHandle  = storageKeyHandle + 1
	legacyRootHandles = persistentHandles - 1
)

// storageKey is hwauthd's storage key as found in the TPM: the TCG ECC
// P-256 SRK template as a primary of the owner hierarchy (so the same key
// every time on one TPM), made persistent.
type storageKey struct {
	handle tpm2.NamedHandle
	public tpm2.TPMTPublic
}

// handlesLocked lists the used handles in [first, first+n) (TPM 2.0 Part 3
// §30.2 TPM2_GetCapability, TPM_CAP_HANDLES).
func (t *TPM) handlesLocked(first tpm2.TPMHandle, n int) ([]tpm2.TPMHandle, error) {
	end := first + tpm2.TPMHandle(n)
	var out []tpm2.TPMHandle
	for next := first; next < end; {
		rsp, err := tpm2.GetCapability{
			Capability:    tpm2.TPMCapHandles,
			Property:      uint32(next),
			PropertyCount: uint32(end - next),
		}.Execute(t.tr)
		if err != nil {
			return nil, fmt.Errorf("list handles: %w", classify(err))
		}
		hs, err := rsp.CapabilityData.Data.Handles()
		if err != nil {
			return nil, fmt.Errorf("list handles: %w: %v", hwerr.ErrProtocol, err)
		}
		for _, h := range hs.Handle {
			if h >= first && h < end {
				out = append(out, h)
			}
		}
		// A TPM answers at most MAX_CAP_HANDLES per call and says when
		// there are more (TPM 2.0 Part 3 §30.2).
		if !rsp.MoreData || len(hs.Handle) == 0 {
			break
		}
		next = hs.Handle[len(hs.Handle)-1] + 1
	}
	return out, nil
}

// ensureStorageKeyLocked finds hwauthd's storage key at storageKeyHandle
// or creates it there (TPM2_CreatePrimary, TPM2_EvictControl). The
// persistent key must be the primary the owner seed gives for the SRK
// template: anything else at the handle (a key someone else made, whose
// private half they may know and could use to read salted sessions) is
// evicted and replaced.
func (t *TPM) ensureStorageKeyLocked() error {
	primary, err := tpm2.CreatePrimary{
		PrimaryHandle: t.ownerAuth(),
		InPublic:      tpm2.New2B(tpm2.ECCSRKTemplate),
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("create storage key: %w", classify(err))
	}
	defer t.flushLocked(primary.ObjectHandle)
	pub, err := primary.OutPublic.Contents()
	if err != nil {
		return fmt.Errorf("storage key: %w: %v", hwerr.ErrProtocol, err)
	}
	cur, err := tpm2.ReadPublic{ObjectHandle: storageKeyHandle}.Execute(t.tr)
	switch {
	case err == nil && bytes.Equal(cur.Name.Buffer, primary.Name.Buffer):
		t.srk = storageKey{handle: tpm2.NamedHandle{Handle: storageKeyHandle, Name: primary.Name}, public: *pub}
		return nil
	case err == nil:
		if err := t.evictLocked(tpm2.NamedHandle{Handle: storageKeyHandle, Name: cur.Name}); err != nil {
			return err
		}
	case !errors.Is(err, tpm2.TPMRCHandle):
		return fmt.Errorf("read storage key: %w", classify(err))
	}
	_, err = tpm2.EvictControl{
		Auth:             t.ownerAuth(),
		ObjectHandle:     tpm2.NamedHandle{Handle: primary.ObjectHandle, Name: primary.Name},
		PersistentHandle: storageKeyHandle,
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("make storage key persistent: %w", classify(err))
	}
	t.srk = storageKey{handle: tpm2.NamedHandle{Handle: storageKeyHandle, Name: primary.Name}, public: *pub}
	return nil
}

// evictLocked removes a persistent object (TPM 2.0 Part 3 §28.5
// TPM2_EvictControl on a persistent handle).
func (t *TPM) evictLocked(h tpm2.NamedHandle) error {
	_, err := tpm2.EvictControl{Auth: t.ownerAuth(), ObjectHandle: h, PersistentHandle: h.Handle}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("evict persistent key: %w", classify(err))
	}
	return nil
}

// ownerAuth authorizes the owner hierarchy with its authorization value
// from Config.OwnerAuth (empty on a TPM nobody took ownership of).
func (t *TPM) ownerAuth() tpm2.AuthHandle {
	return tpm2.AuthHandle{Handle: tpm2.TPMRHOwner, Auth: tpm2.PasswordAuth(t.ownerAuthValue)}
}

// errWrongDevice says that a card belongs to another device's TPM.
var errWrongDevice = fmt.Errorf("this virtual smart card was created on another device and works only there: %w",
	hwerr.ErrWrongDevice)

// loadLocked loads a card's key under the storage key (TPM 2.0 Part 3
// §12.2 TPM2_Load). The TPM checks the blob's integrity with a key
// derived from the parent's seed, so a blob made on another TPM fails with
// TPM_RC_INTEGRITY: hwerr.ErrWrongDevice.
func (t *TPM) loadLocked(public, private []byte) (tpm2.NamedHandle, error) {
	rsp, err := tpm2.Load{
		ParentHandle: tpm2.AuthHandle{Handle: t.srk.handle.Handle, Name: t.srk.handle.Name, Auth: tpm2.PasswordAuth(nil)},
		InPrivate:    tpm2.TPM2BPrivate{Buffer: private},
		InPublic:     tpm2.BytesAs2B[tpm2.TPMTPublic](public),
	}.Execute(t.tr)
	switch {
	case errors.Is(err, tpm2.TPMRCIntegrity):
		return tpm2.NamedHandle{}, errWrongDevice
	case errors.Is(err, tpm2.TPMRCSize), errors.Is(err, tpm2.TPMRCInsufficient), errors.Is(err, tpm2.TPMRCValue):
		return tpm2.NamedHandle{}, fmt.Errorf("load card key: %w: %v", hwerr.ErrInvalidInput, err)
	case err != nil:
		return tpm2.NamedHandle{}, fmt.Errorf("load card key: %w", classify(err))
	}
	return tpm2.NamedHandle{Handle: rsp.ObjectHandle, Name: rsp.Name}, nil
}

// saltedSession is an HMAC session salted with the storage key (ECDH,
// TPM 2.0 Part 1 §19.6.13) with authValue auth: neither the authValue
// nor an HMAC that could be brute-forced offline for it crosses the bus.
// With enc it also encrypts the first command or response parameter
// (AES-128-CFB, Part 1 §21). It is flushed after one command.
func (t *TPM) saltedSession(auth []byte, enc ...tpm2.AuthOption) tpm2.Session {
	opts := append([]tpm2.AuthOption{tpm2.Auth(auth), tpm2.Salted(t.srk.handle.Handle, t.srk.public)}, enc...)
	return tpm2.HMAC(tpm2.TPMAlgSHA256, 16, opts...)
}

// encryptSession is a session used only to encrypt the first command
// parameter (a new authValue) on its way to the TPM.
func (t *TPM) encryptSession() tpm2.Session {
	return t.saltedSession(nil, tpm2.AESEncryption(128, tpm2.EncryptIn))
}
