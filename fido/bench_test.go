package fido

import (
	"testing"

	libfido2 "github.com/keys-pub/go-libfido2"

	"github.com/hwauthd/hwauthd/fido/fidotest/softkey"
	"github.com/hwauthd/hwauthd/fido/fidotest/vfido"
)

// benchKey makes a soft key with one credential for the benchmarks.
func benchKey(b *testing.B) (*vfido.Device, *Key, []byte) {
	d := vfido.Start(b, softkey.Options{})
	k, err := New(Config{}).Open(d.Path)
	if err != nil {
		b.Fatal(err)
	}
	cred, err := k.MakeCredential(b.Context(), testRP, []byte("u"), "bench", hash("r"), ES256, nil, false)
	if err != nil {
		b.Fatal(err)
	}
	return d, k, cred.ID
}

// BenchmarkAssertBackend measures an assertion through the backend (owner
// lock, cancel watcher, input checks, authData parsing). Compare with
// BenchmarkAssertGoLibfido2Direct on the same soft key; the ratio of the
// two ns/op is the backend's overhead.
func BenchmarkAssertBackend(b *testing.B) {
	_, k, id := benchKey(b)
	cdh := hash("bench")
	for b.Loop() {
		if _, err := k.Assert(b.Context(), testRP, cdh, [][]byte{id}, nil, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAssertGoLibfido2Direct measures the same assertion straight
// through go-libfido2.
func BenchmarkAssertGoLibfido2Direct(b *testing.B) {
	d, _, id := benchKey(b)
	dev, err := libfido2.NewDevice(d.Path)
	if err != nil {
		b.Fatal(err)
	}
	cdh := hash("bench")
	for b.Loop() {
		if _, err := dev.Assertion(testRP, cdh, [][]byte{id}, "", &libfido2.AssertionOpts{UP: libfido2.True}); err != nil {
			b.Fatal(err)
		}
	}
}
