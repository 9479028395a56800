package piv

import (
	"fmt"
	"strings"

	"github.com/hwauthd/hwauthd/hwerr"
)

// FASCN is the Federal Agency Smart Credential Number of a CHUID, decoded
// (TIG SCEPACS v2.3 §6, SP 800-73-4 Part 1 §3.1.2). Each field holds decimal
// digits.
type FASCN struct {
	Agency     string // agency code, 4 digits
	System     string // system code, 4 digits
	Credential string // credential number, 6 digits
	Series     string // credential series, 1 digit
	Issue      string // individual credential issue, 1 digit
	Person     string // person identifier, 10 digits
	OrgCat     string // organizational category, 1 digit
	Org        string // organizational identifier, 4 digits
	Assoc      string // person/organization association category, 1 digit
}

// FASCNLength is the size of an encoded FASC-N: 40 characters of 5 bits.
const FASCNLength = 25

// FASC-N control characters (4-bit values; digits are 0-9).
const (
	fascnSS = 0xB // start sentinel
	fascnFS = 0xD // field separator
	fascnES = 0xF // end sentinel
)

// layout returns the 38 characters before the LRC, separators included, or
// an error when a field has the wrong length or a non-digit.
func (f FASCN) layout() ([]byte, error) {
	chars := []byte{fascnSS}
	fields := []struct {
		v   string
		n   int
		sep bool
	}{
		{f.Agency, 4, true}, {f.System, 4, true}, {f.Credential, 6, true}, {f.Series, 1, true},
		{f.Issue, 1, true}, {f.Person, 10, false}, {f.OrgCat, 1, false}, {f.Org, 4, false}, {f.Assoc, 1, false},
	}
	for _, fd := range fields {
		if len(fd.v) != fd.n || strings.Trim(fd.v, "0123456789") != "" {
			return nil, fmt.Errorf("FASC-N field %q must be %d digits: %w", fd.v, fd.n, hwerr.ErrInvalidInput)
		}
		for _, c := range []byte(fd.v) {
			chars = append(chars, c-'0')
		}
		if fd.sep {
			chars = append(chars, fascnFS)
		}
	}
	return append(chars, fascnES), nil
}

// Encode returns the 25-byte FASC-N: 40 characters, each four bits least
// significant first and an odd parity bit, packed most significant bit
// first, the last character being the LRC.
func (f FASCN) Encode() ([]byte, error) {
	chars, err := f.layout()
	if err != nil {
		return nil, err
	}
	var lrc byte
	for _, c := range chars {
		lrc ^= c
	}
	chars = append(chars, lrc)
	out := make([]byte, FASCNLength)
	for i, c := range chars {
		putBits(out, i*5, fascnCode(c))
	}
	return out, nil
}

// fascnCode returns a character's five bits: b1..b4 (least significant bit
// first) and the odd parity bit.
func fascnCode(c byte) byte {
	var code, ones byte
	for i := range 4 {
		bit := c >> i & 1
		code = code<<1 | bit
		ones += bit
	}
	return code<<1 | (ones+1)&1
}

// putBits writes the five bits of code at bit offset off of b.
func putBits(b []byte, off int, code byte) {
	for i := range 5 {
		if code>>(4-i)&1 == 1 {
			pos := off + i
			b[pos/8] |= 0x80 >> (pos % 8)
		}
	}
}

// getBits reads five bits at bit offset off of b.
func getBits(b []byte, off int) byte {
	var code byte
	for i := range 5 {
		pos := off + i
		code = code<<1 | b[pos/8]>>(7-pos%8)&1
	}
	return code
}

// ParseFASCN decodes a 25-byte FASC-N, checking each character's parity,
// the separators and the LRC.
func ParseFASCN(b []byte) (FASCN, error) {
	if len(b) != FASCNLength {
		return FASCN{}, fmt.Errorf("FASC-N of %d bytes: %w", len(b), hwerr.ErrProtocol)
	}
	chars := make([]byte, 40)
	var lrc byte
	for i := range chars {
		code := getBits(b, i*5)
		c := decodeChar(code)
		if fascnCode(c) != code {
			return FASCN{}, fmt.Errorf("FASC-N character %d has bad parity: %w", i, hwerr.ErrProtocol)
		}
		chars[i] = c
		if i < 39 {
			lrc ^= c
		}
	}
	if chars[39] != lrc {
		return FASCN{}, fmt.Errorf("FASC-N LRC mismatch: %w", hwerr.ErrProtocol)
	}
	return splitFASCN(chars[:39])
}

// decodeChar reverses the bit order of a code's four data bits.
func decodeChar(code byte) byte {
	var c byte
	for i := range 4 {
		c |= (code >> (4 - i) & 1) << i
	}
	return c
}

// splitFASCN cuts the 39 characters before the LRC into fields and checks
// that the control characters sit where the layout puts them.
func splitFASCN(chars []byte) (FASCN, error) {
	digits := func(from, n int) string {
		var sb strings.Builder
		for _, c := range chars[from : from+n] {
			sb.WriteByte('0' + c)
		}
		return sb.String()
	}
	f := FASCN{
		Agency: digits(1, 4), System: digits(6, 4), Credential: digits(11, 6), Series: digits(18, 1),
		Issue: digits(20, 1), Person: digits(22, 10), OrgCat: digits(32, 1), Org: digits(33, 4), Assoc: digits(37, 1),
	}
	want, err := f.layout()
	if err != nil || string(want) != string(chars) {
		return FASCN{}, fmt.Errorf("FASC-N layout: %w", hwerr.ErrProtocol)
	}
	return f, nil
}
