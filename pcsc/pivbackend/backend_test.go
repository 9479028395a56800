package pivbackend

import (
	"io"
	"log/slog"
	"testing"

	"github.com/hwauthd/hwauthd/pcsc/vreader"
)

// TestOwnReadersAreNotClaimed: hwauthd's own readers hold virtual cards the
// TPM backend serves; the PC/SC side never reads them as PIV cards, and
// tells the PKCS#11 backend to leave them alone too.
func TestOwnReadersAreNotClaimed(t *testing.T) {
	b := New(slog.New(slog.NewTextHandler(io.Discard, nil)))
	for reader, own := range map[string]bool{
		vreader.FriendlyName + " 00 00": true,
		vreader.FriendlyName + " 09 00": true,
		"Test PCD 00 00":                false,
		vreader.FriendlyName:            false,
	} {
		if ownReader(reader) != own || b.ServesReader(reader) != own {
			t.Errorf("%q: own %v, serves %v; want %v", reader, ownReader(reader), b.ServesReader(reader), own)
		}
	}
}
