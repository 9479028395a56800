package certutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"slices"
	"testing"
	"time"
)

func TestSANRoundTripThroughACertificate(t *testing.T) {
	san, err := MarshalSAN([]string{"alice@CORP.EXAMPLE"}, []string{"alice@example.org"}, []string{"host.example.org"})
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "a"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour),
		ExtraExtensions: []pkix.Extension{{Id: OIDSubjectAltName, Value: san}}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	upns, err := UPNs(cert)
	if err != nil || !slices.Equal(upns, []string{"alice@CORP.EXAMPLE"}) {
		t.Fatalf("UPNs = %q, %v", upns, err)
	}
	// crypto/x509 reads the other names of the same extension.
	if !slices.Equal(cert.EmailAddresses, []string{"alice@example.org"}) || !slices.Equal(cert.DNSNames, []string{"host.example.org"}) {
		t.Fatalf("emails %q dns %q", cert.EmailAddresses, cert.DNSNames)
	}
}

func TestParseName(t *testing.T) {
	n, err := ParseName(`CN=Alice Example, O=Example\, Inc., C=NL, OU=IT`)
	if err != nil {
		t.Fatal(err)
	}
	if n.CommonName != "Alice Example" || n.Organization[0] != "Example, Inc." || n.Country[0] != "NL" || n.OrganizationalUnit[0] != "IT" {
		t.Fatalf("%+v", n)
	}
	for _, bad := range []string{"", "O=x", "CN", "CN=a,XX=b", "CN=a,"} {
		if _, err := ParseName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzParseSANUPNs feeds arbitrary subject-alternative-name bytes (they come
// from a card's certificate) to the UPN parser: it must never panic, and what
// MarshalSAN writes must parse back.
func FuzzParseSANUPNs(f *testing.F) {
	seed, _ := MarshalSAN([]string{"alice@example.com"}, []string{"a@b"}, nil)
	f.Add(seed)
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{0x30, 0x03, 0xa0, 0x01, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		upns, err := ParseSANUPNs(b)
		if err != nil && len(upns) > 0 {
			t.Fatal("error with results")
		}
	})
}

func FuzzParseName(f *testing.F) {
	f.Add("CN=a,O=b")
	f.Add(`CN=a\,b`)
	f.Fuzz(func(t *testing.T, s string) {
		if n, err := ParseName(s); err == nil && n.CommonName == "" {
			t.Fatal("accepted a name without CN")
		}
	})
}
