package piv

import (
	"bytes"
	"compress/gzip"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/tlv"
)

func TestFASCNRoundTrip(t *testing.T) {
	f := FASCN{Agency: "1234", System: "5678", Credential: "000042", Series: "1", Issue: "2",
		Person: "0123456789", OrgCat: "1", Org: "4321", Assoc: "3"}
	b, err := f.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != FASCNLength {
		t.Fatalf("encoded %d bytes", len(b))
	}
	got, err := ParseFASCN(b)
	if err != nil || got != f {
		t.Fatalf("ParseFASCN = %+v, %v", got, err)
	}
	if (CHUID{FASCN: b}).Serial() != "1234-5678-000042" {
		t.Errorf("Serial = %q", (CHUID{FASCN: b}).Serial())
	}
	for i := range len(b) * 8 {
		flipped := bytes.Clone(b)
		flipped[i/8] ^= 0x80 >> (i % 8)
		if _, err := ParseFASCN(flipped); !errors.Is(err, hwerr.ErrProtocol) {
			t.Fatalf("bit %d flipped: %v, want protocol error", i, err)
		}
	}
	if _, err := (FASCN{Agency: "12a4"}).Encode(); !errors.Is(err, hwerr.ErrInvalidInput) {
		t.Errorf("non-digit agency: %v", err)
	}
}

// TestFASCNKnown decodes the FASC-N of the SP 800-73 test cards (agency,
// system and credential 9999-9999-999999).
func TestFASCNKnown(t *testing.T) {
	b := []byte{0xD4, 0xE7, 0x39, 0xDA, 0x73, 0x9C, 0xED, 0x39, 0xCE, 0x73, 0x9D, 0x83, 0x68, 0x58, 0x21, 0x08, 0x42, 0x10, 0x84, 0x21, 0xC8, 0x42, 0x10, 0xC3, 0xEB}
	f, err := ParseFASCN(b)
	if err != nil {
		t.Fatal(err)
	}
	if f.Agency != "9999" || f.System != "9999" || f.Credential != "999999" {
		t.Errorf("FASC-N = %+v", f)
	}
	guid := [16]byte{1, 2, 3}
	if got := (CHUID{FASCN: b, GUID: guid}).Serial(); got != "01020300000000000000000000000000" {
		t.Errorf("placeholder FASC-N serial = %q, want the GUID", got)
	}
}

func testCertDER(t testing.TB) []byte {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "t"},
		NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func TestParseCertObject(t *testing.T) {
	der := testCertDER(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(der)
	zw.Close()
	bomb := bytes.Buffer{}
	zw = gzip.NewWriter(&bomb)
	zw.Write(make([]byte, maxCertSize+10))
	zw.Close()
	tests := []struct {
		name string
		obj  []byte
		want error
	}{
		{"plain", cat(tlv.Encode(TagCertificate, der), tlv.Encode(TagCertInfo, []byte{0})), nil},
		{"no certinfo", tlv.Encode(TagCertificate, der), nil},
		{"gzip", cat(tlv.Encode(TagCertificate, gz.Bytes()), tlv.Encode(TagCertInfo, []byte{1})), nil},
		{"gzip bomb", cat(tlv.Encode(TagCertificate, bomb.Bytes()), tlv.Encode(TagCertInfo, []byte{1})), hwerr.ErrProtocol},
		{"not gzip", cat(tlv.Encode(TagCertificate, der), tlv.Encode(TagCertInfo, []byte{1})), hwerr.ErrProtocol},
		{"no certificate", tlv.Encode(TagCertInfo, []byte{0}), hwerr.ErrProtocol},
		{"garbage", tlv.Encode(TagCertificate, []byte{1, 2, 3}), hwerr.ErrProtocol},
	}
	for _, tt := range tests {
		cert, err := parseCertObject(tt.obj)
		if tt.want == nil && (err != nil || !bytes.Equal(cert.Raw, der)) {
			t.Errorf("%s: %v", tt.name, err)
		}
		if tt.want != nil && !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func cat(b ...[]byte) []byte { return bytes.Join(b, nil) }

func TestParseCHUID(t *testing.T) {
	guid := bytes.Repeat([]byte{0xAB}, 16)
	ch, err := parseCHUID(cat(tlv.Encode(0x30, make([]byte, 25)), tlv.Encode(0x34, guid), tlv.Encode(0x35, []byte("20301231")), tlv.Encode(0x3E, nil)))
	if err != nil || ch.GUID != [16]byte(guid) || ch.Expiry.Year() != 2030 {
		t.Errorf("parseCHUID = %+v, %v", ch, err)
	}
	for name, bad := range map[string][]byte{
		"no GUID":    tlv.Encode(0x30, make([]byte, 25)),
		"short GUID": tlv.Encode(0x34, guid[:8]),
		"malformed":  {0x34, 0x80},
	} {
		if _, err := parseCHUID(bad); !errors.Is(err, hwerr.ErrProtocol) {
			t.Errorf("%s: %v, want protocol error", name, err)
		}
	}
}

func TestParseApplication(t *testing.T) {
	apt := tlv.Encode(TagAppProperty, tlv.Encode(0x4F, AID[RIDLength:]), tlv.Encode(0x79, tlv.Encode(0x4F, AID)),
		tlv.Encode(0x50, []byte("card")), tlv.Encode(0xAC, tlv.Encode(0x80, []byte{0x11}), tlv.Encode(0x06, nil)))
	app, err := parseApplication(apt)
	if err != nil || !bytes.Equal(app.AID, AID) || app.Label != "card" || len(app.Algorithms) != 1 || app.Algorithms[0] != KeyAlgP256 {
		t.Errorf("parseApplication = %+v, %v", app, err)
	}
	if _, err := parseApplication(tlv.Encode(0x6F, nil)); !errors.Is(err, hwerr.ErrProtocol) {
		t.Errorf("no template: %v", err)
	}
}

// FuzzParseCHUID feeds card bytes to the CHUID, FASC-N and application
// template decoders, which must never panic.
func FuzzParseCHUID(f *testing.F) {
	f.Add(cat(tlv.Encode(0x30, make([]byte, 25)), tlv.Encode(0x34, make([]byte, 16)), tlv.Encode(0x35, []byte("20301231"))))
	f.Add(tlv.Encode(TagAppProperty, tlv.Encode(0x4F, AID)))
	f.Add([]byte{0x34, 0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if ch, err := parseCHUID(b); err == nil {
			_ = ch.Serial()
		}
		parseApplication(b)
		ParseFASCN(b)
	})
}

// FuzzParseCertObject feeds card bytes to the certificate container decoder.
func FuzzParseCertObject(f *testing.F) {
	der := testCertDER(f)
	f.Add(cat(tlv.Encode(TagCertificate, der), tlv.Encode(TagCertInfo, []byte{0})))
	f.Add(cat(tlv.Encode(TagCertificate, []byte{0x1f, 0x8b}), tlv.Encode(TagCertInfo, []byte{1})))
	f.Fuzz(func(t *testing.T, b []byte) {
		if cert, err := parseCertObject(b); err == nil && cert == nil {
			t.Fatal("nil certificate without error")
		}
	})
}
