// Package tpm is the TPM virtual smart card engine: per-device signing keys
// that never leave the TPM, unlocked with a PIN the TPM itself checks and
// counts (SPEC.md R3).
//
// # Objects
//
// hwauthd keeps one storage key in the TPM: the TCG ECC P-256 SRK template
// as an owner-hierarchy primary, persistent at 0x81480000. Each card is
//
//   - a PIN index and (optionally) a PUK index: NV indices of type PIN Fail
//     (TPM_NT_PIN_FAIL with TPMA_NV_NO_DA, TPM 2.0 Part 1 §37) in
//     0x01148000-0x011483FF, whose authValue is SHA-256(label, kind, salt,
//     secret) and whose data is (pinCount, pinLimit);
//   - a signing key (ECC P-256, P-384 or RSA-2048; fixedTPM, fixedParent,
//     sensitiveDataOrigin) under the storage key whose only user
//     authorization is the policy PolicySecret(PIN index).
//
// # Counting
//
// Every use of the key is preceded by TPM2_PolicySecret on the PIN index,
// authorized with the PIN in an HMAC session salted with the storage key
// (so neither the PIN's authValue nor an HMAC that could be brute-forced
// offline crosses the bus; the engine keeps that session loaded, see
// pinSession). The TPM checks and counts it: a wrong PIN
// increments pinCount before the TPM answers, a right one resets it, and
// at pinLimit the TPM refuses the index's authValue altogether. The index
// is exempt from dictionary-attack logic, so the card blocks on its own
// counter at any TPM lockout setting and never moves the machine-wide
// lockout counter; one card's tries never touch another card. Nothing is
// written to disk when a PIN is tried.
//
// The PIN index's policy is a PolicyOR of: its first write (setting
// pinLimit), reading the counter without a secret, PolicySecret(PUK index)
// for NV_Write (reset the count) and NV_ChangeAuth (a new PIN), and a
// PolicyAuthorize branch through which PolicySecret(PIN index) allows
// NV_ChangeAuth (changing the PIN with the old one; a policy cannot name
// its own index, so a one-use key approved that policy at creation and
// was thrown away). The PUK index is the same without the PUK branches,
// plus a random branch that makes its name, and so every name derived
// from it, unique to the card.
//
// # Deletion and copies
//
// DestroyCard deletes the card's indices. The key's policy names the PIN
// index by name, which no later index has, so after deletion no retained
// copy of the card record signs, PIN or not. A PIN change touches only the
// index: an old copy of the record with the old PIN opens nothing. A copy
// taken to another TPM fails TPM2_Load's integrity check there
// (hwerr.ErrWrongDevice); each card records its TPM's DeviceID.
//
// What the TPM cannot stop: whoever holds the owner authorization (anyone
// with root while it is empty) can delete a PIN index and define one with
// the same name and an authValue of their choice. See docs/config.md,
// owner_auth_file.
//
// # Secrets in memory
//
// Every method zeroes the PIN, PUK and new-PIN slices it is given, on
// success and on error, and the buffers that held authValues. The caller
// must not reuse them. Nothing secret is logged or put in an error.
//
// # Concurrency and slots
//
// A *TPM serializes all commands (see TPM). Between operations it keeps up
// to two card keys loaded, and every key it has loaded once saved
// (TPM2_ContextSave): a card whose key is not loaded flushes the least
// recently used one and loads its saved context, one slot and no parent,
// instead of loading it from the storage key (keycache.go). So two cards
// signing in turn cost no load at all, and any number of cards one
// TPM2_FlushContext and one TPM2_ContextLoad per switch; after a TPM Reset
// the saved contexts no longer load and the keys load from their parent
// again. It also keeps the salted PIN session, so that a PIN check costs
// no ECDH, and one policy session for signatures (signSession), shared by
// all cards: a signature is then two commands, TPM2_PolicySecret and
// TPM2_Sign, both marshalled by hand (command.go) instead of by go-tpm's
// reflection. The TPM resets that session's policy when TPM2_Sign uses
// it; a PIN check resets it with TPM2_PolicyRestart; after any failure it
// is flushed, so no satisfied PIN assertion outlives the call that made
// it. When the TPM answers that something held is not loaded (it was
// reset, or another program flushed it), the TPM refused the command
// before checking any authorization: the engine forgets what is gone and
// a signature, PIN check, PIN change or unblock is tried once more, so no
// try is spent and none fails for it. An
// operation loads at most two more objects (swtpm has three transient
// slots; those that need two flush the held keys first) and flushes them
// before returning; operations that need sessions of their own (PIN
// change and unblock, attestation, card creation, the admin unblock) drop
// the held sessions first (three loaded sessions).
package tpm
