package certutil

import (
	"bytes"
	"encoding/pem"
	"testing"
)

func TestPEMRoundTrip(t *testing.T) {
	der := []byte{0x30, 0x03, 0x02, 0x01, 0x07}
	text := EncodePEM(PEMCertificate, der)
	blk, rest := pem.Decode([]byte(text))
	if blk == nil || blk.Type != "CERTIFICATE" || !bytes.Equal(blk.Bytes, der) || len(rest) != 0 {
		t.Fatalf("EncodePEM = %q", text)
	}
	file := "comment\n" + EncodePEM(PEMPublicKey, []byte{1}) + "between\n" + text + EncodePEM(PEMCertificate, []byte{2})
	if got := PEMBlocks([]byte(file), PEMCertificate); len(got) != 2 || !bytes.Equal(got[0], der) || !bytes.Equal(got[1], []byte{2}) {
		t.Errorf("PEMBlocks(CERTIFICATE) = %x", got)
	}
	if got := PEMBlocks([]byte(file), ""); len(got) != 3 || !bytes.Equal(got[0], []byte{1}) {
		t.Errorf("PEMBlocks(any) = %x", got)
	}
	if got := PEMBlocks(der, PEMCertificate); got != nil {
		t.Errorf("PEMBlocks(DER) = %x, want none", got)
	}
	if got := PEMOrDER([]byte(file)); !bytes.Equal(got, []byte{1}) {
		t.Errorf("PEMOrDER(PEM) = %x, want the first block", got)
	}
	if got := PEMOrDER(der); !bytes.Equal(got, der) {
		t.Errorf("PEMOrDER(DER) = %x, want it as it is", got)
	}
}

// TestEncodePEMAsEncodingPEM: the same text as encoding/pem writes, at every
// length around the line breaks and for each block type.
func TestEncodePEMAsEncodingPEM(t *testing.T) {
	der := make([]byte, 300)
	for i := range der {
		der[i] = byte(i*7 + 3)
	}
	for _, typ := range []string{PEMCertificate, PEMPublicKey, PEMCSR} {
		for n := range len(der) + 1 {
			want := string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der[:n]}))
			if got := EncodePEM(typ, der[:n]); got != want {
				t.Fatalf("EncodePEM(%s, %d bytes) = %q, encoding/pem writes %q", typ, n, got, want)
			}
		}
	}
}
