// Package tpm is the TPM virtual smart card engine: per-device signing keys
// that never leave the TPM, unlocked with a PIN or a PUK (SPEC.md R3).
//
// # Objects
//
// Each card has its own storage key, created under the TCG ECC P-256 SRK
// (a primary in the owner hierarchy, re-created on demand and flushed at
// once) and made persistent in hwauthd's handle range 0x81480000-0x814800FF;
// the private blob TPM2_Create returned for it is thrown away. Under the
// card's storage key live:
//
//   - the signing key (ECC P-256, P-384 or RSA-2048; fixedTPM, fixedParent,
//     sensitiveDataOrigin, dictionary-attack protection on), whose authValue
//     is a random secret K (192 bits, written as 32 base64 characters:
//     go-tpm v0.9.8 mishandles authValues holding a zero byte);
//   - K sealed twice in KEYEDHASH sealed data objects (DA protection on),
//     once with authValue SHA-256(label, "PIN", salt, PIN) and once with the
//     PUK; the salt is random per card.
//
// Unlocking unseals K with the PIN in an HMAC session salted with the
// card's storage key and with response encryption, so neither the PIN's
// authValue, an HMAC an eavesdropper could brute-force, nor K crosses the
// bus in clear; K then authorizes TPM2_Sign in an HMAC session. Changing the
// PIN unseals K with the old PIN and seals it again under the new one (the
// key and its certificate stay), unblocking does the same with the PUK.
//
// # Deletion
//
// DestroyCard evicts the card's persistent storage key. Every blob of the
// card is wrapped with a key derived from that storage key's seed, which
// existed only inside the TPM, so after deletion no retained copy of the
// card record loads any more, PIN or not.
//
// # Devices
//
// A card records the TPM's DeviceID (a hash of its ECC endorsement key).
// A card used on another TPM is hwerr.ErrWrongDevice; even with forged
// metadata its blobs fail TPM2_Load's integrity check there.
//
// # Tries
//
// Each card counts wrong PINs and PUKs itself (Policy.PINTries, PUKTries,
// default 5), decremented and saved through the caller's SaveFunc before
// the TPM sees the secret, so a crash cannot give free tries. The TPM's own
// dictionary-attack lockout, machine-wide, is the backstop and is reported
// as hwerr.ErrLockout, never as a wrong PIN.
//
// # Secrets in memory
//
// Every method zeroes the PIN, PUK and new-PIN slices it is given, on
// success and on error, and the buffers that held authValues or K. The
// caller must not reuse them. Nothing secret is logged or put in an error.
//
// # Concurrency and slots
//
// A *TPM serializes all commands (see TPM). An operation loads at most two
// objects at a time (swtpm has three transient slots) and flushes them and
// its sessions before returning.
package tpm
