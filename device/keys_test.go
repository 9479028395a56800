package device

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"sync"
	"testing"
)

// testKeySet is one private key of each kind the package's tests sign
// with.
type testKeySet struct {
	p256, p384 *ecdsa.PrivateKey
	rsa        *rsa.PrivateKey
}

var makeTestKeys = sync.OnceValues(func() (testKeySet, error) {
	var k testKeySet
	var err error
	if k.p256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return k, err
	}
	if k.p384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
		return k, err
	}
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	return k, err
})

// testKeys returns the keys, made once for all the tests (an RSA 2048 key
// takes a while under the race detector); the tests only read them.
func testKeys(t *testing.T) testKeySet {
	t.Helper()
	k, err := makeTestKeys()
	if err != nil {
		t.Fatal(err)
	}
	return k
}
