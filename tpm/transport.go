package tpm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/hwauthd/hwauthd/hwerr"
)

// maxRetries bounds how often one command is resent after a TPM warning
// that asks for it (TPM_RC_RETRY, TPM_RC_YIELDED, TPM_RC_TESTING).
const maxRetries = 20

// retryTransport resends a command the TPM answered with TPM_RC_RETRY,
// TPM_RC_YIELDED or TPM_RC_TESTING (TPM 2.0 Part 2 §6.6.3: the command was
// not executed and may be resent unchanged, sessions included), a bounded
// number of times, and sends nothing more once the operation holding the
// TPM lock has ended (op, set by (*TPM).lock). TPM2_FlushContext is always
// sent, ended or not, so that an operation given up half-way still frees
// its objects and sessions (swtpm has no resource manager to do it).
type retryTransport struct {
	inner transport.TPM
	op    *operation
}

// operation is one holding of the TPM lock; it ends when its holder's
// context does ((*TPM).lock arranges that).
type operation struct {
	ended atomic.Pointer[error]
}

// end records why the operation ended (its context's error).
func (o *operation) end(err error) { o.ended.Store(&err) }

// err is nil while the operation runs, then why it ended.
func (o *operation) err() error {
	if p := o.ended.Load(); p != nil {
		return *p
	}
	return nil
}

// Send implements transport.TPM.
func (r *retryTransport) Send(cmd []byte) ([]byte, error) {
	for try := 0; ; try++ {
		if r.op != nil && commandCode(cmd) != tpm2.TPMCCFlushContext {
			if err := r.op.err(); err != nil {
				return nil, fmt.Errorf("%w: %v", hwerr.ErrCanceled, err)
			}
		}
		rsp, err := r.inner.Send(cmd)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", hwerr.ErrUnavailable, err)
		}
		if try >= maxRetries || !retryable(responseCode(rsp)) {
			return rsp, nil
		}
	}
}

// responseCode reads the response code from a response header (tag, size,
// code; TPM 2.0 Part 1 §18.8), or 0 for a response too short to have one.
func responseCode(rsp []byte) tpm2.TPMRC {
	if len(rsp) < 10 {
		return 0
	}
	return tpm2.TPMRC(binary.BigEndian.Uint32(rsp[6:10]))
}

// commandCode reads the command code from a command header (TPM 2.0 Part 1
// §18.7), or 0 for a command too short to have one.
func commandCode(cmd []byte) tpm2.TPMCC {
	if len(cmd) < 10 {
		return 0
	}
	return tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10]))
}

func retryable(rc tpm2.TPMRC) bool {
	return rc == tpm2.TPMRCRetry || rc == tpm2.TPMRCYielded || rc == tpm2.TPMRCTesting
}
