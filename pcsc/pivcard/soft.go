package pivcard

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/pcsc/piv"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// Defaults of a new card.
const (
	DefaultPIN      = "123456"
	DefaultPUK      = "12345678"
	DefaultTries    = 3
	DefaultLabel    = "hwauthd emulated PIV"
	stateVersion    = 1
	certValidity    = 10 * 365 * 24 * time.Hour
	chuidExpiryForm = "20060102"
)

// Options configures a new card. The zero value gives the defaults: PIN
// 123456, PUK 12345678, three tries each, a fresh P-256 key with a
// self-signed certificate in slot 9A, and a random GUID and serial, so that
// two default cards are two distinct cards.
type Options struct {
	PIN, PUK           string // 6 to 8 characters
	PINTries, PUKTries int
	Label              string // application label and certificates' CN
	Slots              []SlotSpec
	// Serial is the FASC-N credential number, 6 digits; random when empty.
	Serial string
	// GUID is the CHUID GUID, 16 bytes; random when empty. Tests give a
	// card another card's GUID to play an impostor.
	GUID []byte
}

// SlotSpec asks for a key in a slot. Key is generated when nil; the
// certificate is self-signed with the key, CN from Options.Label.
type SlotSpec struct {
	Slot piv.Slot
	Alg  piv.KeyAlg
	Key  crypto.Signer // *ecdsa.PrivateKey or *rsa.PrivateKey matching Alg
}

// slotKey is a slot's key and certificate (DER) as the card holds them.
type slotKey struct {
	Slot piv.Slot
	Alg  piv.KeyAlg
	Key  crypto.Signer
	Cert []byte
}

// softStore is the Store of the emulated test card: software keys, the PIN
// and PUK as salted hashes with their counters, and data objects, saved to a
// state file after every change when the card has one.
type softStore struct {
	st   state
	path string // state file, "" when the card is not persisted
}

var (
	_ Store       = (*softStore)(nil)
	_ Provisioner = (*softStore)(nil)
)

// secret is a PIN or PUK as the card keeps it: a salted hash, never the
// value, and its retry counter.
type secret struct {
	Hash []byte `json:"hash"`
	Max  int    `json:"max"`
	Left int    `json:"left"`
}

// state is everything the card keeps across power cycles.
type state struct {
	Salt   []byte
	PIN    secret
	PUK    secret
	Label  string
	GUID   []byte
	FASCN  []byte
	Expiry string // YYYYMMDD
	Slots  []slotKey
	Mgm    mgmKey
	// Objects holds the data objects written with PUT DATA, by tag: the
	// content of their 53 field, empty for a deleted object. They take the
	// place of the objects the card was made with.
	Objects map[uint32][]byte
}

// New creates a card from opts (see Options for the defaults).
func New(opts Options) (*Card, error) {
	opts = withDefaults(opts)
	st := state{Label: opts.Label, Expiry: time.Now().Add(certValidity).Format(chuidExpiryForm),
		Mgm: mgmKey{Alg: alg3DES, Key: bytes.Clone(DefaultMgmKey)}}
	var err error
	if st.Salt, err = randomBytes(16); err != nil {
		return nil, err
	}
	if st.GUID, err = randomBytes(16); err != nil {
		return nil, err
	}
	if len(opts.GUID) == 16 {
		st.GUID = bytes.Clone(opts.GUID)
	}
	if st.FASCN, err = newFASCN(opts.Serial); err != nil {
		return nil, err
	}
	s := &softStore{st: st}
	if s.st.PIN, err = s.newSecret("PIN", opts.PIN, opts.PINTries); err != nil {
		return nil, err
	}
	if s.st.PUK, err = s.newSecret("PUK", opts.PUK, opts.PUKTries); err != nil {
		return nil, err
	}
	for _, spec := range opts.Slots {
		if err := s.addSlot(spec); err != nil {
			return nil, err
		}
	}
	return NewApplet(s), nil
}

func withDefaults(o Options) Options {
	if o.PIN == "" {
		o.PIN = DefaultPIN
	}
	if o.PUK == "" {
		o.PUK = DefaultPUK
	}
	if o.PINTries == 0 {
		o.PINTries = DefaultTries
	}
	if o.PUKTries == 0 {
		o.PUKTries = DefaultTries
	}
	if o.Label == "" {
		o.Label = DefaultLabel
	}
	if len(o.Slots) == 0 {
		o.Slots = []SlotSpec{{Slot: piv.SlotAuthentication, Alg: piv.KeyAlgP256}}
	}
	return o
}

func randomBytes(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	return b, nil
}

// newSecret hashes a PIN or PUK given in options.
func (s *softStore) newSecret(what, value string, tries int) (secret, error) {
	padded := []byte(value)
	for len(padded) < padLen {
		padded = append(padded, 0xFF)
	}
	defer clear(padded)
	if !validPadded(padded) {
		return secret{}, fmt.Errorf("pivcard: %s must be 6 to 8 characters", what)
	}
	if tries < 1 || tries > 15 {
		return secret{}, fmt.Errorf("pivcard: %s tries %d outside 1..15", what, tries)
	}
	return secret{Hash: s.hashSecret(padded), Max: tries, Left: tries}, nil
}

// newFASCN encodes a FASC-N with agency and system code 9999 and the
// credential number serial, random when empty.
func newFASCN(serial string) ([]byte, error) {
	if serial == "" {
		n, err := rand.Int(rand.Reader, big.NewInt(999998))
		if err != nil {
			return nil, err
		}
		serial = fmt.Sprintf("%06d", n.Int64()+1)
	}
	f := piv.FASCN{Agency: "9999", System: "9999", Credential: serial, Series: "1", Issue: "1",
		Person: "0000000000", OrgCat: "1", Org: "9999", Assoc: "1"}
	return f.Encode()
}

// addSlot generates or takes the slot's key and self-signs its certificate.
func (s *softStore) addSlot(spec SlotSpec) error {
	if spec.Slot.ObjectTag() == 0 {
		return fmt.Errorf("pivcard: unsupported slot %s", spec.Slot)
	}
	if s.slot(spec.Slot) != nil {
		return fmt.Errorf("pivcard: slot %s given twice", spec.Slot)
	}
	key := spec.Key
	if key == nil {
		var err error
		if key, err = generateKey(spec.Alg); err != nil {
			return err
		}
	}
	if alg, err := piv.KeyAlgOf(key.Public()); err != nil || alg != spec.Alg {
		return fmt.Errorf("pivcard: key for slot %s is not %s", spec.Slot, spec.Alg)
	}
	cert, err := selfSign(key, s.st.Label)
	if err != nil {
		return fmt.Errorf("pivcard: certificate for slot %s: %w", spec.Slot, err)
	}
	s.st.Slots = append(s.st.Slots, slotKey{Slot: spec.Slot, Alg: spec.Alg, Key: key, Cert: cert})
	return nil
}

// generateKey makes a fresh key of the algorithm.
func generateKey(alg piv.KeyAlg) (crypto.Signer, error) {
	switch alg {
	case piv.KeyAlgP256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case piv.KeyAlgP384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case piv.KeyAlgRSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	}
	return nil, fmt.Errorf("pivcard: unsupported algorithm %s", alg)
}

// selfSign issues a self-signed client-authentication certificate for key.
func selfSign(key crypto.Signer, cn string) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	return x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
}

// ParseSlots parses a slot list such as "9a=p256,9c=p384,9d=rsa2048" into
// specs with keys to be generated.
func ParseSlots(s string) ([]SlotSpec, error) {
	var specs []SlotSpec
	for _, item := range strings.Split(s, ",") {
		name, alg, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("pivcard: slot %q: want SLOT=ALG such as 9a=p256", item)
		}
		slot, err := piv.ParseSlot(name)
		if err != nil {
			return nil, fmt.Errorf("pivcard: %w", err)
		}
		a, err := piv.ParseKeyAlg(alg)
		if err != nil {
			return nil, fmt.Errorf("pivcard: %w", err)
		}
		specs = append(specs, SlotSpec{Slot: slot, Alg: a})
	}
	return specs, nil
}

// Certificate returns the DER certificate in the slot's certificate object,
// or nil.
func (c *Card) Certificate(slot piv.Slot) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, err := tlv.Find(c.store.Object(slot.ObjectTag()), piv.TagCertificate)
	if err != nil {
		return nil
	}
	return bytes.Clone(cert)
}

// GUID returns the card's CHUID GUID, zero when it has none.
func (c *Card) GUID() [16]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var g [16]byte
	guid, _ := tlv.Find(c.store.Object(piv.TagCHUID), 0x34)
	copy(g[:], guid)
	return g
}

// stateFile is the JSON form of the state: keys as PKCS#8, certificates as
// DER (both base64), PIN and PUK as salted hashes only.
type stateFile struct {
	Version int               `json:"version"`
	Salt    []byte            `json:"salt"`
	PIN     secret            `json:"pin"`
	PUK     secret            `json:"puk"`
	Label   string            `json:"label"`
	GUID    []byte            `json:"guid"`
	FASCN   []byte            `json:"fascn"`
	Expiry  string            `json:"expiry"`
	Slots   []slotFile        `json:"slots"`
	Mgm     mgmKey            `json:"mgm_key"`
	Objects map[string][]byte `json:"objects,omitempty"` // by hex tag
}

type slotFile struct {
	Slot string `json:"slot"`
	Alg  string `json:"alg"`
	Key  []byte `json:"key"`
	Cert []byte `json:"cert"`
}

// Save writes the state of a card made by New or Load to path (mode 0600,
// replaced atomically) and keeps saving there after every change of PIN, PUK,
// retry counters, keys or objects.
func (c *Card) Save(path string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.store.(*softStore)
	if !ok {
		return fmt.Errorf("pivcard: a card over %T keeps its own state", c.store)
	}
	if err := s.save(path); err != nil {
		return err
	}
	s.path = path
	return nil
}

func (s *softStore) save(path string) error {
	f := stateFile{Version: stateVersion, Salt: s.st.Salt, PIN: s.st.PIN, PUK: s.st.PUK, Label: s.st.Label,
		GUID: s.st.GUID, FASCN: s.st.FASCN, Expiry: s.st.Expiry, Mgm: s.st.Mgm}
	for tag, v := range s.st.Objects {
		if f.Objects == nil {
			f.Objects = map[string][]byte{}
		}
		f.Objects[fmt.Sprintf("%06X", tag)] = v
	}
	for _, k := range s.st.Slots {
		der, err := x509.MarshalPKCS8PrivateKey(k.Key)
		if err != nil {
			return fmt.Errorf("pivcard: save slot %s: %w", k.Slot, err)
		}
		f.Slots = append(f.Slots, slotFile{Slot: k.Slot.String(), Alg: k.Alg.String(), Key: der, Cert: k.Cert})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// writeFileAtomic writes b to a temporary file beside path and renames it
// over path, so a crash leaves either the old or the new state.
func writeFileAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pivcard-*")
	if err != nil {
		return fmt.Errorf("pivcard: save: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("pivcard: save: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("pivcard: save: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("pivcard: save: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("pivcard: save: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("pivcard: save: %w", err)
	}
	return nil
}

// Load reads a card saved with Save; the card keeps saving its changes to
// path.
func Load(path string) (*Card, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pivcard: load: %w", err)
	}
	var f stateFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("pivcard: load %s: %w", path, err)
	}
	if f.Version != stateVersion || len(f.GUID) != 16 || len(f.FASCN) != piv.FASCNLength || len(f.Salt) == 0 {
		return nil, fmt.Errorf("pivcard: load %s: unsupported or incomplete state", path)
	}
	if f.Mgm.Key == nil { // a state saved before the card had a management key
		f.Mgm = mgmKey{Alg: alg3DES, Key: bytes.Clone(DefaultMgmKey)}
	}
	if _, err := f.Mgm.block(); err != nil {
		return nil, fmt.Errorf("pivcard: load %s: %w", path, err)
	}
	st := state{Salt: f.Salt, PIN: f.PIN, PUK: f.PUK, Label: f.Label, GUID: f.GUID, FASCN: f.FASCN, Expiry: f.Expiry, Mgm: f.Mgm}
	for name, v := range f.Objects {
		tag, err := strconv.ParseUint(name, 16, 32)
		if err != nil || !writable(uint32(tag)) || len(v) > maxObjectSize {
			return nil, fmt.Errorf("pivcard: load %s: object %q", path, name)
		}
		if st.Objects == nil {
			st.Objects = map[uint32][]byte{}
		}
		st.Objects[uint32(tag)] = v
	}
	for _, s := range f.Slots {
		k, err := loadSlot(s)
		if err != nil {
			return nil, fmt.Errorf("pivcard: load %s: %w", path, err)
		}
		st.Slots = append(st.Slots, k)
	}
	return NewApplet(&softStore{st: st, path: path}), nil
}

// loadSlot decodes one slot of a state file and checks that key, algorithm
// and certificate agree.
func loadSlot(s slotFile) (slotKey, error) {
	slot, err := piv.ParseSlot(s.Slot)
	if err != nil {
		return slotKey{}, err
	}
	alg, err := piv.ParseKeyAlg(s.Alg)
	if err != nil {
		return slotKey{}, err
	}
	parsed, err := x509.ParsePKCS8PrivateKey(s.Key)
	if err != nil {
		return slotKey{}, fmt.Errorf("slot %s key: %w", slot, err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok {
		return slotKey{}, fmt.Errorf("slot %s: key cannot sign", slot)
	}
	if a, err := piv.KeyAlgOf(key.Public()); err != nil || a != alg {
		return slotKey{}, fmt.Errorf("slot %s: key is not %s", slot, alg)
	}
	if s.Cert != nil { // a generated key has no certificate of the card's making
		if _, err := x509.ParseCertificate(s.Cert); err != nil {
			return slotKey{}, fmt.Errorf("slot %s certificate: %w", slot, err)
		}
	}
	return slotKey{Slot: slot, Alg: alg, Key: key, Cert: s.Cert}, nil
}
