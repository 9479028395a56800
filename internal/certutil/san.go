// Package certutil reads and writes the parts of X.509 certificates that
// crypto/x509 leaves out and smart card sign-in needs: the Microsoft user
// principal name (UPN) in the subject alternative name, subject names
// written as text, and the PEM framing of certificates and keys (one helper
// for every program of the module).
package certutil

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
)

var (
	// OIDSubjectAltName is the subject alternative name extension (RFC 5280
	// §4.2.1.6).
	OIDSubjectAltName = asn1.ObjectIdentifier{2, 5, 29, 17}
	// OIDUPN is Microsoft's user principal name otherName
	// (szOID_NT_PRINCIPAL_NAME).
	OIDUPN = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 311, 20, 2, 3}
)

// GeneralName tags of RFC 5280 §4.2.1.6.
const (
	tagOtherName = 0
	tagRFC822    = 1
	tagDNS       = 2
)

// UPNs returns the user principal names in cert's subject alternative name.
func UPNs(cert *x509.Certificate) ([]string, error) {
	for _, ext := range cert.Extensions {
		if ext.Id.Equal(OIDSubjectAltName) {
			return ParseSANUPNs(ext.Value)
		}
	}
	return nil, nil
}

// ParseSANUPNs parses GeneralNames and returns the UPN otherNames:
// otherName [0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT
// UTF8String }. Other names are skipped.
func ParseSANUPNs(der []byte) ([]string, error) {
	var names []asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &names); err != nil {
		return nil, err
	} else if len(rest) > 0 {
		return nil, errors.New("trailing data after subject alternative name")
	}
	var upns []string
	for _, n := range names {
		if n.Class != asn1.ClassContextSpecific || n.Tag != tagOtherName || !n.IsCompound {
			continue
		}
		var other struct {
			TypeID asn1.ObjectIdentifier
			Value  asn1.RawValue `asn1:"explicit,tag:0"`
		}
		if _, err := asn1.UnmarshalWithParams(n.FullBytes, &other, "tag:0"); err != nil || !other.TypeID.Equal(OIDUPN) {
			continue
		}
		var s string
		if _, err := asn1.UnmarshalWithParams(other.Value.Bytes, &s, "utf8"); err == nil && s != "" {
			upns = append(upns, s)
		}
	}
	return upns, nil
}

// MarshalSAN encodes a subject alternative name with UPNs, e-mail addresses
// and DNS names, for certificates and requests that carry a UPN (which
// crypto/x509 cannot write by itself).
func MarshalSAN(upns, emails, dnsNames []string) ([]byte, error) {
	var names []asn1.RawValue
	for _, u := range upns {
		utf8, err := asn1.MarshalWithParams(u, "utf8")
		if err != nil {
			return nil, err
		}
		other, err := asn1.MarshalWithParams(struct {
			TypeID asn1.ObjectIdentifier
			Value  asn1.RawValue
		}{OIDUPN, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: 0, IsCompound: true, Bytes: utf8}}, "tag:0")
		if err != nil {
			return nil, err
		}
		names = append(names, asn1.RawValue{FullBytes: other})
	}
	for _, e := range emails {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagRFC822, Bytes: []byte(e)})
	}
	for _, d := range dnsNames {
		names = append(names, asn1.RawValue{Class: asn1.ClassContextSpecific, Tag: tagDNS, Bytes: []byte(d)})
	}
	return asn1.Marshal(names)
}

// ParseName reads a distinguished name written as "CN=alice,O=Example,C=NL"
// (the attribute types CN, O, OU, C, L, ST, SERIALNUMBER, STREET, POSTALCODE;
// a comma inside a value is written as "\,").
func ParseName(s string) (pkix.Name, error) {
	var n pkix.Name
	for _, part := range splitUnescaped(s) {
		k, v, ok := strings.Cut(part, "=")
		k, v = strings.ToUpper(strings.TrimSpace(k)), strings.TrimSpace(strings.ReplaceAll(v, `\,`, ","))
		if !ok || v == "" {
			return n, fmt.Errorf("subject %q: %q is not TYPE=value", s, part)
		}
		switch k {
		case "CN":
			n.CommonName = v
		case "O":
			n.Organization = append(n.Organization, v)
		case "OU":
			n.OrganizationalUnit = append(n.OrganizationalUnit, v)
		case "C":
			n.Country = append(n.Country, v)
		case "L":
			n.Locality = append(n.Locality, v)
		case "ST":
			n.Province = append(n.Province, v)
		case "STREET":
			n.StreetAddress = append(n.StreetAddress, v)
		case "POSTALCODE":
			n.PostalCode = append(n.PostalCode, v)
		case "SERIALNUMBER":
			n.SerialNumber = v
		default:
			return n, fmt.Errorf("subject %q: unknown attribute type %q", s, k)
		}
	}
	if n.CommonName == "" {
		return n, fmt.Errorf("subject %q has no CN", s)
	}
	return n, nil
}

// splitUnescaped splits s at commas not preceded by a backslash.
func splitUnescaped(s string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == ',' && (i == 0 || s[i-1] != '\\') {
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
