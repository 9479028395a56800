package tpm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/tcp"

	"github.com/hwauthd/hwauthd/hwerr"
)

// DefaultDevice is the kernel's TPM resource manager device.
const DefaultDevice = "/dev/tpmrm0"

// Config says which TPM to open.
type Config struct {
	// Device is the TPM character device; DefaultDevice when empty.
	Device string
	// Simulator, when set, is the command address "host:PORT" of a TPM
	// simulator (swtpm) speaking the TCG TCP protocol; its platform port is
	// PORT+1. It takes precedence over Device.
	Simulator string
	// Policy holds the PIN rules and limits; zero fields take the defaults
	// of DefaultPolicy.
	Policy Policy
	// OwnerAuth is the owner hierarchy's authorization value, empty on a
	// TPM whose owner authorization nobody set. hwauthd needs it to define
	// and delete cards' NV indices and its persistent storage key.
	OwnerAuth []byte
	// OwnerAuthFile, when set, is a file holding OwnerAuth (a trailing
	// newline is dropped); it is read at Open.
	OwnerAuthFile string
}

// Info describes the TPM.
type Info struct {
	// Manufacturer is the TPM_PT_MANUFACTURER vendor id as text ("IBM ").
	Manufacturer string
	// VendorString is TPM_PT_VENDOR_STRING_1..4 concatenated.
	VendorString string
	// FirmwareVersion is TPM_PT_FIRMWARE_VERSION_1.2 as "major.minor".
	FirmwareVersion string
	// DeviceID identifies this TPM: see (*TPM).DeviceID.
	DeviceID string
}

// TPM is the one owner of one TPM. All commands go through it and are
// serialized by its lock (a one-slot semaphore, so that waiting for it
// honours the caller's context): at most one operation, and so at most one
// set of loaded objects and sessions, is in the TPM at a time, which keeps
// within the three transient slots of swtpm. Methods whose names end in
// Locked expect the lock held. There is no other lock, so no lock order.
type TPM struct {
	sem            chan struct{}
	tr             *retryTransport
	closer         transport.TPMCloser
	policy         Policy
	ownerAuthValue []byte
	deviceID       string
	srk            storageKey
	keys           keyCache                // card keys: saved contexts, up to heldKeys loaded
	pin            *pinSession             // the PIN session kept loaded, or nil
	admin          map[string]pendingAdmin // open admin challenges by card id
	sign           *signSession            // the policy session kept for signing, or nil
	unwatch        func() bool             // stops watching the lock holder's context
}

// Open opens the TPM named by cfg, computes its device identity and returns
// its owner. A TPM that cannot be reached is hwerr.ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*TPM, error) {
	if cfg.OwnerAuthFile != "" {
		b, err := os.ReadFile(cfg.OwnerAuthFile)
		if err != nil {
			return nil, fmt.Errorf("read TPM owner authorization: %w", err)
		}
		cfg.OwnerAuth = bytes.TrimRight(b, "\r\n")
		defer clear(b)
	}
	tc, err := openTransport(cfg)
	if err != nil {
		return nil, fmt.Errorf("open TPM: %w: %v", hwerr.ErrUnavailable, err)
	}
	return open(ctx, tc, cfg)
}

// open sets up the engine over an open transport, which it closes on
// failure.
func open(ctx context.Context, tc transport.TPMCloser, cfg Config) (*TPM, error) {
	t := &TPM{
		sem:            make(chan struct{}, 1),
		tr:             &retryTransport{inner: tc},
		closer:         tc,
		policy:         cfg.Policy.withDefaults(),
		ownerAuthValue: slices.Clone(cfg.OwnerAuth),
		admin:          map[string]pendingAdmin{},
	}
	if err := t.lock(ctx); err != nil {
		tc.Close()
		return nil, err
	}
	defer t.unlock()
	if err := t.flushStaleLocked(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("open TPM: %w", err)
	}
	id, err := t.endorsementIDLocked()
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("open TPM: %w", err)
	}
	t.deviceID = id
	if err := t.ensureStorageKeyLocked(); err != nil {
		tc.Close()
		return nil, fmt.Errorf("open TPM: %w", err)
	}
	return t, nil
}

func openTransport(cfg Config) (transport.TPMCloser, error) {
	if cfg.Simulator == "" {
		dev := cfg.Device
		if dev == "" {
			dev = DefaultDevice
		}
		return linuxtpm.Open(dev)
	}
	host, port, err := net.SplitHostPort(cfg.Simulator)
	if err != nil {
		return nil, fmt.Errorf("simulator address: %w", err)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("simulator port: %w", err)
	}
	return tcp.Open(tcp.Config{
		CommandAddress:  cfg.Simulator,
		PlatformAddress: net.JoinHostPort(host, strconv.Itoa(p+1)),
	})
}

// Close releases the TPM connection. It waits for a running operation.
func (t *TPM) Close() error {
	t.sem <- struct{}{}
	defer t.unlock()
	t.dropKeysLocked()
	t.dropSessionsLocked()
	for id := range t.admin {
		t.dropAdminLocked(id)
	}
	return t.closer.Close()
}

// Abort closes the connection to the TPM without waiting for the operation
// in progress, which then fails with hwerr.ErrUnavailable; t is unusable
// afterwards. It unsticks an operation on a TPM that stopped answering.
func (t *TPM) Abort() error { return t.closer.Close() }

// Policy returns the PIN rules and limits in force (defaults filled in).
func (t *TPM) Policy() Policy { return t.policy }

// DeviceID returns this TPM's identity: the hex SHA-256 of the marshalled
// public area (TPMT_PUBLIC) of the endorsement key created from the TCG
// ECC P-256 EK template (EK Credential Profile template L-2). The EK is a
// primary key derived from the endorsement seed, so the value is the same
// every time on one TPM and differs between TPMs; the ECC template is used
// because creating it is fast (RSA key generation in a TPM takes seconds).
func (t *TPM) DeviceID() string { return t.deviceID }

func (t *TPM) endorsementIDLocked() (string, error) {
	rsp, err := tpm2.CreatePrimary{
		PrimaryHandle: tpm2.TPMRHEndorsement,
		InPublic:      tpm2.New2B(tpm2.ECCEKTemplate),
	}.Execute(t.tr)
	if err != nil {
		return "", fmt.Errorf("create endorsement key: %w", classify(err))
	}
	t.flushLocked(rsp.ObjectHandle)
	sum := sha256.Sum256(rsp.OutPublic.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// lock takes the TPM for one operation or gives up when ctx ends. When
// ctx ends during the operation, the transport sends nothing more for it
// but flushes.
func (t *TPM) lock(ctx context.Context) error {
	select {
	case t.sem <- struct{}{}:
	case <-ctx.Done():
		return fmt.Errorf("wait for the TPM: %w: %v", hwerr.ErrCanceled, ctx.Err())
	}
	if err := ctx.Err(); err != nil {
		<-t.sem
		return fmt.Errorf("wait for the TPM: %w: %v", hwerr.ErrCanceled, err)
	}
	op := new(operation)
	t.tr.op = op
	t.unwatch = context.AfterFunc(ctx, func() { op.end(ctx.Err()) })
	return nil
}

func (t *TPM) unlock() {
	if t.unwatch != nil {
		t.unwatch()
		t.unwatch = nil
	}
	t.tr.op = nil
	<-t.sem
}

// Info reads the TPM's manufacturer, vendor string and firmware version
// (TPM 2.0 Part 3 §30.2 TPM2_GetCapability, TPM_CAP_TPM_PROPERTIES).
func (t *TPM) Info(ctx context.Context) (Info, error) {
	if err := t.lock(ctx); err != nil {
		return Info{}, err
	}
	defer t.unlock()
	rsp, err := tpm2.GetCapability{
		Capability:    tpm2.TPMCapTPMProperties,
		Property:      uint32(tpm2.TPMPTManufacturer),
		PropertyCount: 8,
	}.Execute(t.tr)
	if err != nil {
		return Info{}, fmt.Errorf("read TPM properties: %w", classify(err))
	}
	props, err := rsp.CapabilityData.Data.TPMProperties()
	if err != nil {
		return Info{}, fmt.Errorf("read TPM properties: %w: %v", hwerr.ErrProtocol, err)
	}
	return infoFromProperties(props.TPMProperty, t.deviceID), nil
}

func infoFromProperties(props []tpm2.TPMSTaggedProperty, id string) Info {
	v := map[tpm2.TPMPT]uint32{}
	for _, p := range props {
		v[p.Property] = p.Value
	}
	var vendor strings.Builder
	for pt := tpm2.TPMPTVendorString1; pt < tpm2.TPMPTVendorString1+4; pt++ {
		vendor.WriteString(propText(v[pt]))
	}
	fw := v[tpm2.TPMPTFirmwareVersion1]
	return Info{
		Manufacturer:    propText(v[tpm2.TPMPTManufacturer]),
		VendorString:    vendor.String(),
		FirmwareVersion: fmt.Sprintf("%d.%d", fw>>16, fw&0xffff),
		DeviceID:        id,
	}
}

// propText turns a 4-character TPM property into text, dropping NULs.
func propText(v uint32) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return strings.TrimRight(string(b[:]), "\x00")
}

// flushStaleLocked flushes the transient objects and loaded sessions a
// previous owner left behind (a daemon killed mid-operation on a TPM
// without resource manager, such as swtpm); through /dev/tpmrm0 there are
// none to see. The TPM has one owner, so nothing of anyone else's is lost.
func (t *TPM) flushStaleLocked() error {
	for _, first := range []tpm2.TPMHandle{0x80000000, 0x02000000, 0x03000000} { // TPM_HT_TRANSIENT, _LOADED_SESSION, _SAVED_SESSION
		hs, err := t.listHandlesLocked(first)
		if err != nil {
			return err
		}
		for _, h := range hs {
			t.flushLocked(h)
		}
	}
	return nil
}

// listHandlesLocked lists the transient objects (first 0x80000000), loaded
// sessions (0x02000000) or saved sessions (0x03000000) in the TPM, up to
// 64 (TPM 2.0 Part 3 §30.2 TPM2_GetCapability, TPM_CAP_HANDLES).
func (t *TPM) listHandlesLocked(first tpm2.TPMHandle) ([]tpm2.TPMHandle, error) {
	rsp, err := tpm2.GetCapability{Capability: tpm2.TPMCapHandles, Property: uint32(first), PropertyCount: 64}.Execute(t.tr)
	if err != nil {
		return nil, fmt.Errorf("list loaded handles: %w", classify(err))
	}
	hs, err := rsp.CapabilityData.Data.Handles()
	if err != nil {
		return nil, fmt.Errorf("list loaded handles: %w: %v", hwerr.ErrProtocol, err)
	}
	var out []tpm2.TPMHandle
	for _, h := range hs.Handle {
		if sameHandleKind(h, first) {
			out = append(out, h)
		}
	}
	return out, nil
}

// sameHandleKind tells whether a handle listed by TPM_CAP_HANDLES from
// first is of the kind asked for. Sessions are listed under their own
// handles whether the query was for loaded or saved ones: 0x02 for HMAC
// sessions, 0x03 for policy sessions (TPM 2.0 Part 2 §7.2).
func sameHandleKind(h, first tpm2.TPMHandle) bool {
	isSession := func(h tpm2.TPMHandle) bool { return h>>24 == 0x02 || h>>24 == 0x03 }
	if isSession(first) {
		return isSession(h)
	}
	return h>>24 == first>>24
}

// flushLocked removes a transient object or session from the TPM (TPM 2.0
// Part 3 §28.4 TPM2_FlushContext). Errors are ignored: the handle is gone
// either way or the connection is broken.
func (t *TPM) flushLocked(h tpm2.TPMHandle) {
	_, _ = t.sendPlainLocked(tpm2.TPMCCFlushContext, be.AppendUint32(nil, uint32(h)))
}
