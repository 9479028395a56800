package piv

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

// maxCertSize bounds a decompressed certificate, so a hostile card cannot
// make the client inflate a gzip bomb.
const maxCertSize = 64 << 10

// Client talks to the PIV application of one card. It is not safe for
// concurrent use: the card's single owner serializes calls, since the PIN's
// security status is shared by everything sent to the card.
//
// A Client keeps nothing the card says: what the card holds can change under
// it (another application writes a certificate, the card is reset or
// swapped), so a caller that keeps a certificate decides when to read it
// again.
type Client struct {
	t apdu.Transmitter
}

// NewClient returns a client sending its commands through t.
func NewClient(t apdu.Transmitter) *Client {
	return &Client{t: t}
}

// exchange sends cmd and wraps a failure with what was being done.
func (c *Client) exchange(ctx context.Context, what string, cmd apdu.Command) (apdu.Response, error) {
	resp, err := apdu.Exchange(ctx, c.t, cmd)
	if err != nil {
		return resp, fmt.Errorf("piv: %s: %w", what, err)
	}
	return resp, nil
}

// Application is what SELECT answers in the application property template
// (SP 800-73-4 Part 2 §3.1.1, Table 3).
type Application struct {
	AID        []byte   // the application identifier (tag 4F, or 79 { 4F })
	Label      string   // application label (50), may be empty
	Algorithms []KeyAlg // cryptographic algorithms (AC { 80 … })
}

// Select selects the PIV application by its full AID and parses the
// application property template.
func (c *Client) Select(ctx context.Context) (Application, error) {
	resp, err := c.exchange(ctx, "select", apdu.Command{INS: InsSelect, P1: 0x04, Data: AID, Le: 256})
	if err != nil {
		return Application{}, err
	}
	return parseApplication(resp.Data)
}

// parseApplication decodes 61 { 4F PIX, 79 { 4F AID }, 50 label, AC … }.
func parseApplication(b []byte) (Application, error) {
	apt, err := tlv.Find(b, TagAppProperty)
	if err != nil {
		return Application{}, fmt.Errorf("piv: application property template: %w", protocolErr(err))
	}
	objs, err := tlv.Parse(apt)
	if err != nil {
		return Application{}, fmt.Errorf("piv: application property template: %w", err)
	}
	var app Application
	for _, o := range objs {
		switch o.Tag {
		case 0x4F:
			app.AID = o.Value
		case 0x79:
			if aid, err := tlv.Find(o.Value, 0x4F); err == nil {
				app.AID = aid
			}
		case 0x50:
			app.Label = string(o.Value)
		case 0xAC:
			app.Algorithms = parseAlgorithms(o.Value)
		}
	}
	return app, nil
}

func parseAlgorithms(b []byte) []KeyAlg {
	objs, _ := tlv.Parse(b)
	var algs []KeyAlg
	for _, o := range objs {
		if o.Tag == 0x80 && len(o.Value) == 1 {
			algs = append(algs, KeyAlg(o.Value[0]))
		}
	}
	return algs
}

// protocolErr turns a missing mandatory tag in the card's answer into a
// protocol error rather than "not found".
func protocolErr(err error) error {
	if errors.Is(err, hwerr.ErrNotFound) {
		return fmt.Errorf("%w: %w", hwerr.ErrProtocol, err)
	}
	return err
}

// getData reads a data object with GET DATA (SP 800-73-4 Part 2 §3.1.2).
// An absent object is an error wrapping hwerr.ErrNotFound.
func (c *Client) getData(ctx context.Context, tag uint32) ([]byte, error) {
	var tagBytes []byte
	for shift := 16; shift >= 0; shift -= 8 {
		if b := byte(tag >> shift); b != 0 || len(tagBytes) > 0 || shift == 0 {
			tagBytes = append(tagBytes, b)
		}
	}
	cmd := apdu.Command{INS: InsGetData, P1: 0x3F, P2: 0xFF, Data: tlv.Encode(TagTagList, tagBytes), Le: 256}
	resp, err := c.exchange(ctx, fmt.Sprintf("get data %X", tag), cmd)
	if err != nil {
		return nil, err
	}
	return resp.Data, nil
}

// getContainer reads a container object and returns the content of its
// 53 data field.
func (c *Client) getContainer(ctx context.Context, tag uint32) ([]byte, error) {
	b, err := c.getData(ctx, tag)
	if err != nil {
		return nil, err
	}
	v, err := tlv.Find(b, TagData)
	if err != nil {
		return nil, fmt.Errorf("piv: object %X: %w", tag, protocolErr(err))
	}
	return v, nil
}

// Discovery is the Discovery Object (SP 800-73-4 Part 1 §3.3.2).
type Discovery struct {
	AID            []byte
	PINUsagePolicy [2]byte
}

// Discovery reads the Discovery Object (GET DATA 5C 01 7E).
func (c *Client) Discovery(ctx context.Context) (Discovery, error) {
	b, err := c.getData(ctx, TagDiscovery)
	if err != nil {
		return Discovery{}, err
	}
	v, err := tlv.Find(b, TagDiscovery)
	if err != nil {
		return Discovery{}, fmt.Errorf("piv: discovery: %w", protocolErr(err))
	}
	var d Discovery
	if d.AID, err = tlv.Find(v, 0x4F); err != nil {
		return Discovery{}, fmt.Errorf("piv: discovery AID: %w", protocolErr(err))
	}
	if p, err := tlv.Find(v, 0x5F2F); err == nil && len(p) == 2 {
		d.PINUsagePolicy = [2]byte(p)
	}
	return d, nil
}

// CHUID is the Card Holder Unique Identifier (SP 800-73-4 Part 1 §3.1.2).
type CHUID struct {
	FASCN  []byte    // raw FASC-N (tag 30), 25 bytes
	GUID   [16]byte  // card UUID (tag 34)
	Expiry time.Time // expiration date (tag 35), zero when absent
}

// ReadCHUID reads and parses the CHUID (container 5FC102).
func (c *Client) ReadCHUID(ctx context.Context) (CHUID, error) {
	v, err := c.getContainer(ctx, TagCHUID)
	if err != nil {
		return CHUID{}, err
	}
	return parseCHUID(v)
}

// parseCHUID decodes the CHUID's content.
func parseCHUID(v []byte) (CHUID, error) {
	objs, err := tlv.Parse(v)
	if err != nil {
		return CHUID{}, fmt.Errorf("piv: CHUID: %w", err)
	}
	var ch CHUID
	var haveGUID bool
	for _, o := range objs {
		switch o.Tag {
		case 0x30:
			ch.FASCN = o.Value
		case 0x34:
			if len(o.Value) != 16 {
				return CHUID{}, fmt.Errorf("piv: CHUID GUID of %d bytes: %w", len(o.Value), hwerr.ErrProtocol)
			}
			ch.GUID, haveGUID = [16]byte(o.Value), true
		case 0x35:
			if t, err := time.Parse("20060102", string(o.Value)); err == nil {
				ch.Expiry = t
			}
		}
	}
	if !haveGUID {
		return CHUID{}, fmt.Errorf("piv: CHUID without GUID: %w", hwerr.ErrProtocol)
	}
	return ch, nil
}

// Serial returns the card's serial: agency, system and credential number of
// the FASC-N ("9999-9999-123456") when the card has a meaningful one, else
// the GUID in hex.
func (c *Client) Serial(ctx context.Context) (string, error) {
	ch, err := c.ReadCHUID(ctx)
	if err != nil {
		return "", err
	}
	return ch.Serial(), nil
}

// Serial is the serial the CHUID gives; see Client.Serial.
func (ch CHUID) Serial() string {
	if f, err := ParseFASCN(ch.FASCN); err == nil && strings.Trim(f.Credential, "0") != "" && strings.Trim(f.Credential, "9") != "" {
		return f.Agency + "-" + f.System + "-" + f.Credential
	}
	return hex.EncodeToString(ch.GUID[:])
}

// Certificate reads the certificate of a slot from its container
// (`53 { 70 cert, 71 certinfo, FE }`, SP 800-73-4 Part 1 Appendix A),
// inflating it when CertInfo says it is gzip-compressed. An empty slot is an
// error wrapping hwerr.ErrNotFound.
func (c *Client) Certificate(ctx context.Context, slot Slot) (*x509.Certificate, error) {
	tag := slot.ObjectTag()
	if tag == 0 {
		return nil, fmt.Errorf("piv: slot %s: %w", slot, hwerr.ErrNotFound)
	}
	v, err := c.getContainer(ctx, tag)
	if err != nil {
		return nil, err
	}
	cert, err := parseCertObject(v)
	if err != nil {
		return nil, fmt.Errorf("piv: certificate %s: %w", slot, err)
	}
	return cert, nil
}

// parseCertObject decodes 70 cert, 71 certinfo.
func parseCertObject(v []byte) (*x509.Certificate, error) {
	der, err := tlv.Find(v, TagCertificate)
	if err != nil {
		return nil, protocolErr(err)
	}
	if info, err := tlv.Find(v, TagCertInfo); err == nil && len(info) == 1 && info[0]&0x01 != 0 {
		if der, err = gunzip(der); err != nil {
			return nil, err
		}
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", hwerr.ErrProtocol, err)
	}
	return cert, nil
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w: %w", hwerr.ErrProtocol, err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, maxCertSize+1))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w: %w", hwerr.ErrProtocol, err)
	}
	if len(out) > maxCertSize {
		return nil, fmt.Errorf("gzip: certificate over %d bytes: %w", maxCertSize, hwerr.ErrProtocol)
	}
	return out, nil
}
