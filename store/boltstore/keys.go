package boltstore

import "bytes"

// present is the value of index entries (bbolt cannot tell an empty value
// from a missing key in Get).
var present = []byte{1}

// sep separates the parts of a composite key; names never contain it
// (store.CheckName).
const sep = 0

// key joins parts with sep.
func key(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			b = append(b, sep)
		}
		b = append(b, p...)
	}
	return b
}

// prefix returns the key prefix of every composite key starting with parts.
func prefix(parts ...string) []byte {
	return append(key(parts...), sep)
}

// split splits a composite key into its parts.
func split(k []byte) []string {
	var out []string
	for _, p := range bytes.Split(k, []byte{sep}) {
		out = append(out, string(p))
	}
	return out
}
