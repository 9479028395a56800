package certutil

import "encoding/pem"

// PEM block types (RFC 7468).
const (
	PEMCertificate = "CERTIFICATE"
	PEMPublicKey   = "PUBLIC KEY" // PKIX SubjectPublicKeyInfo
	PEMCSR         = "CERTIFICATE REQUEST"
)

// EncodePEM returns der as one PEM block of the given type.
func EncodePEM(blockType string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))
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
