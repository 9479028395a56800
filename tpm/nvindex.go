package tpm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/hwauthd/hwauthd/hwerr"
)

// NV indices of cards: hwauthd defines its PIN and PUK indices in
// 0x01148000..0x011483FF, in the owner's NV range (TPM 2.0 Part 2 §7.4,
// TCG "Registry of Reserved TPM 2.0 Handles": 0x01000000-0x013FFFFF;
// 0x48 is 'H'). Two indices per card: at most 512 cards.
const (
	nvHandleBase  = tpm2.TPMHandle(0x01148000)
	nvHandleCount = 1024
)

// pinCounterSize is the size of a PIN index's data,
// TPMS_NV_PIN_COUNTER_PARAMETERS (pinCount, pinLimit; Part 2 §13.2).
const pinCounterSize = 8

// NVIndex is a card's PIN or PUK index: an NV index of type PIN Fail
// (TPM_NT_PIN_FAIL, TPMA_NV_NO_DA; TPM 2.0 Part 1 §37.?), whose
// authValue is derived from the PIN or PUK and whose data is the pair
// (pinCount, pinLimit). The TPM checks the authValue and counts: every
// failed authorization with it increments pinCount, a successful one sets
// it to zero, and once pinCount reaches pinLimit the authValue is
// refused, right or wrong. NO_DA keeps all of it away from the TPM's
// machine-wide dictionary-attack counter.
type NVIndex struct {
	// Handle is the NV index handle.
	Handle uint32 `json:"handle"`
	// Name is the index's TPM name once written (nameAlg || H(TPMS_NV_PUBLIC)),
	// checked before every use.
	Name []byte `json:"name"`
	// Policy is the index's authPolicy; Branches are the PolicyOR branch
	// digests it was made from (see pinIndexBranches).
	Policy   []byte   `json:"policy"`
	Branches [][]byte `json:"branches"`
}

func (x *NVIndex) named() tpm2.NamedHandle {
	return tpm2.NamedHandle{Handle: tpm2.TPMHandle(x.Handle), Name: tpm2.TPM2BName{Buffer: x.Name}}
}

// pinIndexAttributes are the attributes of a PIN or PUK index: PIN Fail,
// exempt from dictionary-attack logic, read with its authValue (which is
// what PolicySecret uses) or a policy, written only through its policy.
// TPMA_NV_AUTHWRITE must be clear for a PIN index (Part 2 §13.4).
func pinIndexAttributes() tpm2.TPMANV {
	return tpm2.TPMANV{
		NT:          tpm2.TPMNTPinFail,
		NoDA:        true,
		AuthRead:    true,
		PolicyRead:  true,
		PolicyWrite: true,
	}
}

// nvPublic is the public area of a PIN or PUK index at h with policy.
func nvPublic(h tpm2.TPMHandle, policy []byte, written bool) tpm2.TPMSNVPublic {
	attrs := pinIndexAttributes()
	attrs.Written = written
	return tpm2.TPMSNVPublic{
		NVIndex:    h,
		NameAlg:    tpm2.TPMAlgSHA256,
		Attributes: attrs,
		AuthPolicy: tpm2.TPM2BDigest{Buffer: policy},
		DataSize:   pinCounterSize,
	}
}

// nvName is the TPM name of an index (Part 1 §16).
func nvName(pub tpm2.TPMSNVPublic) ([]byte, error) {
	n, err := tpm2.NVName(&pub)
	if err != nil {
		return nil, fmt.Errorf("NV index name: %w: %v", hwerr.ErrProtocol, err)
	}
	return n.Buffer, nil
}

// policyDigest computes the policy digest of a sequence of policy
// assertions from the empty policy (Part 1 §19.7).
func policyDigest(steps ...tpm2.PolicyCommand) ([]byte, error) {
	calc, err := tpm2.NewPolicyCalculator(tpm2.TPMAlgSHA256)
	if err != nil {
		return nil, err
	}
	for _, s := range steps {
		if err := s.Update(calc); err != nil {
			return nil, fmt.Errorf("policy digest: %w", err)
		}
	}
	return calc.Hash().Digest, nil
}

// orDigest is the digest of TPM2_PolicyOR over branches.
func orDigest(branches [][]byte) ([]byte, error) {
	return policyDigest(tpm2.PolicyOr{PHashList: orList(branches)})
}

func orList(branches [][]byte) tpm2.TPMLDigest {
	var l tpm2.TPMLDigest
	for _, b := range branches {
		l.Digests = append(l.Digests, tpm2.TPM2BDigest{Buffer: b})
	}
	return l
}

// secretOn is TPM2_PolicySecret on an entity with no policyRef, as a
// policy assertion.
func secretOn(name []byte) tpm2.PolicySecret {
	return tpm2.PolicySecret{AuthHandle: tpm2.NamedHandle{Name: tpm2.TPM2BName{Buffer: name}}}
}

func ccAssertion(cc tpm2.TPMCC) tpm2.PolicyCommandCode { return tpm2.PolicyCommandCode{Code: cc} }

// The branches of a PIN or PUK index's authPolicy, a PolicyOR of them, in
// this order:
//
//  0. init: TPM2_PolicyNvWritten(NO) + TPM2_NV_Write: the one write at
//     creation that sets pinLimit; impossible once written.
//  1. read: TPM2_NV_Read of the counter, with no secret. The count is no
//     secret; reading it does not count as a try.
//  2. (PIN index) PolicySecret(PUK index) + TPM2_NV_Write: the PUK resets
//     the count.
//  3. (PIN index) PolicySecret(PUK index) + TPM2_NV_ChangeAuth: the PUK
//     sets a new PIN.
//  4. (PIN index) TPM2_PolicyAuthorize by the card's approval key of the
//     policy PolicySecret(PIN index) + TPM2_NV_ChangeAuth: the old PIN sets
//     a new PIN. A policy cannot name the index it belongs to (its name
//     covers the policy), hence the indirection; the approval key's private
//     half is thrown away once it signed that one policy.
//  5. (PIN index) TPM2_PolicySigned by the card's admin key +
//     TPM2_NV_ChangeAuth: IT's challenge-response unblock sets a new PIN.
//  6. (PIN index) TPM2_PolicySigned by the admin key + TPM2_NV_Write: and
//     resets the count (see adminkey.go).
//
// There is deliberately no PolicyAuthValue branch: a TPM checks pinLimit
// only when the authValue authorizes in an HMAC or password session, not
// in a policy session, so such a branch would let a blocked PIN be guessed
// on.

// initBranch and readBranch are the first two branches of both indices.
func initBranch() ([]byte, error) {
	return policyDigest(tpm2.PolicyNVWritten{WrittenSet: false}, ccAssertion(tpm2.TPMCCNVWrite))
}

func readBranch() ([]byte, error) { return policyDigest(ccAssertion(tpm2.TPMCCNVRead)) }

// pukIndexBranches are the branches of a PUK index's policy: init, read
// and a random digest no session can reach, which makes the index's name,
// and so every policy naming it, unique to this card: a later card at the
// same handle is never mistaken for a deleted one.
func pukIndexBranches(unique []byte) ([][]byte, error) {
	common, err := commonBranches()
	if err != nil {
		return nil, err
	}
	return append(common, unique), nil
}

// commonBranches are the init and read branches, first in both indices.
func commonBranches() ([][]byte, error) {
	ib, err := initBranch()
	if err != nil {
		return nil, err
	}
	rb, err := readBranch()
	if err != nil {
		return nil, err
	}
	return [][]byte{ib, rb}, nil
}

// pinIndexBranches are the branches of a PIN index's policy (see the
// list above). With no PUK (pukName nil) the PUK branches are
// replaced by unreachable random digests, keeping the numbering.
func pinIndexBranches(pukName, approverName, adminName []byte) ([][]byte, error) {
	common, err := commonBranches()
	if err != nil {
		return nil, err
	}
	pw, pc := randomBytes(32), randomBytes(32)
	if pukName != nil {
		if pw, err = policyDigest(secretOn(pukName), ccAssertion(tpm2.TPMCCNVWrite)); err != nil {
			return nil, err
		}
		if pc, err = policyDigest(secretOn(pukName), ccAssertion(tpm2.TPMCCNVChangeAuth)); err != nil {
			return nil, err
		}
	}
	ap, err := policyDigest(tpm2.PolicyAuthorize{KeySign: tpm2.TPM2BName{Buffer: approverName}})
	if err != nil {
		return nil, err
	}
	admin, err := adminBranches(adminName)
	if err != nil {
		return nil, err
	}
	return append(append(common, pw, pc, ap), admin...), nil
}

// approvedChangePolicy is the policy the approval key signs:
// PolicySecret(PIN index) + TPM2_NV_ChangeAuth.
func approvedChangePolicy(pinName []byte) ([]byte, error) {
	return policyDigest(secretOn(pinName), ccAssertion(tpm2.TPMCCNVChangeAuth))
}

// keyPolicy is the authPolicy of a card's signing key: PolicySecret on
// the card's PIN index. Every use of the key needs the PIN, checked and
// counted by the TPM against that index.
func keyPolicy(pinName []byte) ([]byte, error) { return policyDigest(secretOn(pinName)) }

// counter is a PIN index's data.
type counter struct{ count, limit uint32 }

// left is how many wrong tries the counter still takes.
func (c counter) left() hwerr.Tries {
	if c.count >= c.limit {
		return hwerr.TriesLeft(0)
	}
	return hwerr.TriesLeft(int(c.limit - c.count))
}

func (c counter) bytes() []byte {
	b := binary.BigEndian.AppendUint32(nil, c.count)
	return binary.BigEndian.AppendUint32(b, c.limit)
}

func parseCounter(b []byte) (counter, error) {
	if len(b) != pinCounterSize {
		return counter{}, fmt.Errorf("PIN counter is %d bytes: %w", len(b), hwerr.ErrProtocol)
	}
	return counter{binary.BigEndian.Uint32(b), binary.BigEndian.Uint32(b[4:])}, nil
}

// nvHandlesLocked lists the defined NV indices in hwauthd's range.
func (t *TPM) nvHandlesLocked() ([]tpm2.TPMHandle, error) {
	return t.handlesLocked(nvHandleBase, nvHandleCount)
}

// freeNVHandlesLocked finds n unused NV handles in hwauthd's range.
func (t *TPM) freeNVHandlesLocked(n int) ([]tpm2.TPMHandle, error) {
	hs, err := t.nvHandlesLocked()
	if err != nil {
		return nil, err
	}
	used := map[tpm2.TPMHandle]bool{}
	for _, h := range hs {
		used[h] = true
	}
	var out []tpm2.TPMHandle
	for h := nvHandleBase; h < nvHandleBase+nvHandleCount && len(out) < n; h++ {
		if !used[h] {
			out = append(out, h)
		}
	}
	if len(out) < n {
		return nil, fmt.Errorf("hwauthd's NV handle range is full: %w", hwerr.ErrDeviceFull)
	}
	return out, nil
}

// defineIndexLocked defines a PIN index at h with authValue auth (sent
// encrypted in a session salted with the storage key) and policy branches,
// and writes its counter (0, limit) through the init branch (TPM 2.0 Part
// 3 §31.3 TPM2_NV_DefineSpace, §31.7 TPM2_NV_Write). It zeroes auth.
func (t *TPM) defineIndexLocked(h tpm2.TPMHandle, auth []byte, branches [][]byte, limit int) (*NVIndex, error) {
	defer clear(auth)
	policy, err := orDigest(branches)
	if err != nil {
		return nil, err
	}
	pub := nvPublic(h, policy, false)
	_, err = tpm2.NVDefineSpace{
		AuthHandle: t.ownerAuth(),
		Auth:       tpm2.TPM2BAuth{Buffer: auth},
		PublicInfo: tpm2.New2B(pub),
	}.Execute(t.tr, t.encryptSession())
	if err != nil {
		return nil, fmt.Errorf("define PIN index: %w", classify(err))
	}
	x := &NVIndex{Handle: uint32(h), Policy: policy, Branches: branches}
	unwritten, err := nvName(pub)
	if err != nil {
		return x, err
	}
	x.Name = unwritten
	err = t.withPolicyLocked(func(s tpm2.Session) error {
		if _, err := (tpm2.PolicyNVWritten{PolicySession: s.Handle(), WrittenSet: false}).Execute(t.tr); err != nil {
			return err
		}
		return t.finishBranchLocked(s, x, tpm2.TPMCCNVWrite)
	}, func(s tpm2.Session) error {
		_, err := tpm2.NVWrite{
			AuthHandle: tpm2.AuthHandle{Handle: h, Name: x.named().Name, Auth: s},
			NVIndex:    x.named(),
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: counter{0, uint32(limit)}.bytes()},
		}.Execute(t.tr)
		return err
	})
	if err != nil {
		return x, fmt.Errorf("set PIN limit: %w", classify(err))
	}
	if x.Name, err = nvName(nvPublic(h, policy, true)); err != nil {
		return x, err
	}
	return x, nil
}

// undefineIndexLocked deletes an index (TPM 2.0 Part 3 §31.4
// TPM2_NV_UndefineSpace); one already gone is not an error.
func (t *TPM) undefineIndexLocked(h tpm2.TPMHandle) error {
	rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read NV index: %w", classify(err))
	}
	_, err = tpm2.NVUndefineSpace{
		AuthHandle: t.ownerAuth(),
		NVIndex:    tpm2.NamedHandle{Handle: h, Name: rsp.NVName},
	}.Execute(t.tr)
	if err != nil {
		return fmt.Errorf("delete NV index: %w", classify(err))
	}
	return nil
}

// checkIndexLocked checks that the card's index is in the TPM under its
// recorded name: errCardGone otherwise.
func (t *TPM) checkIndexLocked(x *NVIndex) error {
	h := tpm2.TPMHandle(x.Handle)
	if h < nvHandleBase || h >= nvHandleBase+nvHandleCount {
		return fmt.Errorf("card NV index %#x: %w", x.Handle, hwerr.ErrInvalidInput)
	}
	rsp, err := tpm2.NVReadPublic{NVIndex: h}.Execute(t.tr)
	if errors.Is(err, tpm2.TPMRCHandle) {
		return errCardGone
	}
	if err != nil {
		return fmt.Errorf("read card NV index: %w", classify(err))
	}
	if !bytes.Equal(rsp.NVName.Buffer, x.Name) {
		return errCardGone
	}
	return nil
}

// errCardGone says that a card's PIN index is not in this TPM (any more).
var errCardGone = fmt.Errorf("the virtual smart card was deleted from this device's TPM: %w", hwerr.ErrRemoved)

// finishBranchLocked ends a branch of x's policy with the command code and
// the PolicyOR over x's branches.
func (t *TPM) finishBranchLocked(s tpm2.Session, x *NVIndex, cc tpm2.TPMCC) error {
	if _, err := (tpm2.PolicyCommandCode{PolicySession: s.Handle(), Code: cc}).Execute(t.tr); err != nil {
		return err
	}
	_, err := tpm2.PolicyOr{PolicySession: s.Handle(), PHashList: orList(x.Branches)}.Execute(t.tr)
	return err
}

// readCounterLocked reads an index's (pinCount, pinLimit) through its read
// branch: no secret, no try.
func (t *TPM) readCounterLocked(x *NVIndex) (counter, error) {
	var data []byte
	err := t.withPolicyLocked(func(s tpm2.Session) error {
		return t.finishBranchLocked(s, x, tpm2.TPMCCNVRead)
	}, func(s tpm2.Session) error {
		rsp, err := tpm2.NVRead{
			AuthHandle: tpm2.AuthHandle{Handle: tpm2.TPMHandle(x.Handle), Name: x.named().Name, Auth: s},
			NVIndex:    x.named(),
			Size:       pinCounterSize,
		}.Execute(t.tr)
		if err == nil {
			data = rsp.Data.Buffer
		}
		return err
	})
	if errors.Is(err, tpm2.TPMRCHandle) {
		return counter{}, errCardGone
	}
	if err != nil {
		return counter{}, fmt.Errorf("read PIN counter: %w", classify(err))
	}
	return parseCounter(data)
}

// withPolicyLocked starts a policy session, runs the assertions of
// policy in it, then use with it, and flushes it. Like signLocked, it tries
// once more when a PolicySecret found the held PIN session gone (a TPM
// reset, or another program flushed it): the TPM refused that command
// before it checked any authorization, and use had not run.
func (t *TPM) withPolicyLocked(policy, use func(tpm2.Session) error) error {
	err := t.withPolicyOnceLocked(policy, use)
	if errors.Is(err, errHeldLost) {
		err = t.withPolicyOnceLocked(policy, use)
	}
	return err
}

// withPolicyOnceLocked is withPolicyLocked without the second try.
func (t *TPM) withPolicyOnceLocked(policy, use func(tpm2.Session) error) error {
	t.dropSignSessionLocked() // its slot may be needed beside this one
	s, closer, err := tpm2.PolicySession(t.tr, tpm2.TPMAlgSHA256, 16)
	if err != nil {
		return fmt.Errorf("start policy session: %w", err)
	}
	defer func() { _ = closer() }()
	if err := policy(s); err != nil {
		return err
	}
	return use(s)
}
