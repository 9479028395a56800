// Package tlv parses and encodes the BER-TLV data objects that PIV cards
// exchange (ISO/IEC 7816-4 §5.2, SP 800-73-4 Part 2 §3): multi-byte tags and
// definite lengths of one to three bytes.
//
// The parser is strict: it rejects indefinite lengths (80), length fields
// longer than 82 xx xx, lengths that are not in their shortest form and
// values that run past the end of the input, so that whatever parses
// re-encodes to the same bytes.
package tlv

import (
	"errors"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
)

// MaxLength is the largest value length the two-byte long form (82 xx xx) can
// express.
const MaxLength = 0xFFFF

// TLV is one BER-TLV data object. Tag holds the tag's bytes as a big-endian
// number (5F C1 05 is 0x5FC105); Value is the raw value, a sub-slice of the
// parsed input, which for a constructed tag can itself be parsed.
type TLV struct {
	Tag   uint32
	Value []byte
}

// Errors returned by Parse. Both wrap hwerr.ErrProtocol because malformed
// TLV comes from the card.
var (
	// ErrTruncated means a tag, length or value runs past the end of the input.
	ErrTruncated = fmt.Errorf("tlv: truncated: %w", hwerr.ErrProtocol)
	// ErrMalformed means a tag or length is not allowed (indefinite or
	// non-minimal length, tag longer than four bytes).
	ErrMalformed = fmt.Errorf("tlv: malformed: %w", hwerr.ErrProtocol)
)

// ErrNotFound is returned by Find when the tag is absent; it wraps
// hwerr.ErrNotFound.
var ErrNotFound = fmt.Errorf("tlv: tag not present: %w", hwerr.ErrNotFound)

// Parse splits data into its top-level data objects. It does not descend
// into constructed values; parse a Value again to do that.
func Parse(data []byte) ([]TLV, error) {
	var out []TLV
	for len(data) > 0 {
		t, rest, err := next(data)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
		data = rest
	}
	return out, nil
}

// Find returns the value of the first top-level data object with the given
// tag. It returns an error wrapping ErrNotFound when the tag is absent and a
// parse error when data is malformed before the tag is reached.
func Find(data []byte, tag uint32) ([]byte, error) {
	for len(data) > 0 {
		t, rest, err := next(data)
		if err != nil {
			return nil, err
		}
		if t.Tag == tag {
			return t.Value, nil
		}
		data = rest
	}
	return nil, fmt.Errorf("tag %X: %w", tag, ErrNotFound)
}

// next parses one data object at the start of data.
func next(data []byte) (TLV, []byte, error) {
	tag, n, err := parseTag(data)
	if err != nil {
		return TLV{}, nil, err
	}
	data = data[n:]
	length, n, err := parseLength(data)
	if err != nil {
		return TLV{}, nil, err
	}
	data = data[n:]
	if length > len(data) {
		return TLV{}, nil, fmt.Errorf("value of tag %X needs %d bytes, %d left: %w", tag, length, len(data), ErrTruncated)
	}
	return TLV{Tag: tag, Value: data[:length:length]}, data[length:], nil
}

// parseTag reads a tag (ISO/IEC 7816-4 §5.2.2.1): when the low five bits of
// the first byte are all set, subsequent bytes follow while their top bit is
// set.
func parseTag(data []byte) (uint32, int, error) {
	if len(data) == 0 {
		return 0, 0, fmt.Errorf("tag: %w", ErrTruncated)
	}
	tag := uint32(data[0])
	if data[0]&0x1F != 0x1F {
		return tag, 1, nil
	}
	for i := 1; ; i++ {
		if i >= len(data) {
			return 0, 0, fmt.Errorf("tag: %w", ErrTruncated)
		}
		if i >= 4 {
			return 0, 0, fmt.Errorf("tag longer than 4 bytes: %w", ErrMalformed)
		}
		tag = tag<<8 | uint32(data[i])
		if data[i]&0x80 == 0 {
			return tag, i + 1, nil
		}
	}
}

// parseLength reads a definite length in its shortest form (ISO/IEC 7816-4
// §5.2.2.2): 00-7F, 81 80-FF, 82 0100-FFFF.
func parseLength(data []byte) (int, int, error) {
	if len(data) == 0 {
		return 0, 0, fmt.Errorf("length: %w", ErrTruncated)
	}
	switch b := data[0]; {
	case b < 0x80:
		return int(b), 1, nil
	case b == 0x81:
		if len(data) < 2 {
			return 0, 0, fmt.Errorf("length: %w", ErrTruncated)
		}
		if data[1] < 0x80 {
			return 0, 0, fmt.Errorf("overlong length 81 %02X: %w", data[1], ErrMalformed)
		}
		return int(data[1]), 2, nil
	case b == 0x82:
		if len(data) < 3 {
			return 0, 0, fmt.Errorf("length: %w", ErrTruncated)
		}
		l := int(data[1])<<8 | int(data[2])
		if l < 0x100 {
			return 0, 0, fmt.Errorf("overlong length 82 %04X: %w", l, ErrMalformed)
		}
		return l, 3, nil
	default:
		return 0, 0, fmt.Errorf("length byte %02X not supported: %w", b, ErrMalformed)
	}
}

// errTooLong is the panic-free failure of Append for values over MaxLength.
var errTooLong = errors.New("tlv: value longer than 65535 bytes")

// Append appends the encoding of one data object with the given tag and the
// concatenation of values as its value. It returns an error when the value is
// longer than MaxLength.
func Append(dst []byte, tag uint32, values ...[]byte) ([]byte, error) {
	n := 0
	for _, v := range values {
		n += len(v)
	}
	if n > MaxLength {
		return dst, errTooLong
	}
	dst = appendTag(dst, tag)
	dst = appendLength(dst, n)
	for _, v := range values {
		dst = append(dst, v...)
	}
	return dst, nil
}

// Encode returns the encoding of one data object whose value is the
// concatenation of values. It panics when the value is longer than MaxLength,
// which is a programming error for the small objects this project builds;
// use Append for lengths that come from outside.
func Encode(tag uint32, values ...[]byte) []byte {
	b, err := Append(nil, tag, values...)
	if err != nil {
		panic(err)
	}
	return b
}

// Bytes returns the encoding of t. It panics when t.Value is longer than
// MaxLength, like Encode.
func (t TLV) Bytes() []byte { return Encode(t.Tag, t.Value) }

// appendTag appends the tag's bytes without leading zero bytes.
func appendTag(dst []byte, tag uint32) []byte {
	switch {
	case tag > 0xFFFFFF:
		return append(dst, byte(tag>>24), byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFFFF:
		return append(dst, byte(tag>>16), byte(tag>>8), byte(tag))
	case tag > 0xFF:
		return append(dst, byte(tag>>8), byte(tag))
	default:
		return append(dst, byte(tag))
	}
}

// appendLength appends n in its shortest definite form.
func appendLength(dst []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(dst, byte(n))
	case n <= 0xFF:
		return append(dst, 0x81, byte(n))
	default:
		return append(dst, 0x82, byte(n>>8), byte(n))
	}
}
