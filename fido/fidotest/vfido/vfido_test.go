package vfido

import (
	"strings"
	"testing"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
)

// TestInterposition checks that the executable's fido_dev_info_manifest and
// fido_dev_open take precedence over libfido2.so's: unmodified go-libfido2
// lists the soft key and reads its getInfo through the real libfido2.
func TestInterposition(t *testing.T) {
	d := Start(t, softkey.Options{AAGUID: [16]byte{1, 2, 3}})
	locs, err := libfido2.DeviceLocations()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, l := range locs {
		found = found || l.Path == d.Path
	}
	if !found {
		t.Fatalf("manifest does not list %s: %+v", d.Path, locs)
	}
	dev, err := libfido2.NewDevice(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dev.Info()
	if err != nil {
		t.Fatalf("getInfo through libfido2: %v", err)
	}
	aaguid := d.Key.AAGUID()
	if string(info.AAGUID) != string(aaguid[:]) {
		t.Errorf("AAGUID %x, want %x", info.AAGUID, aaguid)
	}
	if !strings.Contains(strings.Join(info.Versions, ","), "FIDO_2_1") {
		t.Errorf("versions %v", info.Versions)
	}
}
