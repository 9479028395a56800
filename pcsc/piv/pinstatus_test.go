package piv_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hwauthd/hwauthd/hwerr"
	"github.com/hwauthd/hwauthd/pcsc/apdu"
	"github.com/hwauthd/hwauthd/pcsc/piv"
)

// statusCard answers every command with one status word, or fails.
type statusCard struct {
	sw  uint16
	err error
}

func (s statusCard) Transmit(context.Context, []byte) ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	return []byte{byte(s.sw >> 8), byte(s.sw)}, nil
}

func TestPINStatusAnswers(t *testing.T) {
	gone := errors.New("reader gone")
	for _, tt := range []struct {
		card    statusCard
		want    piv.PINStatus
		wantErr error
	}{
		{statusCard{sw: 0x9000}, piv.PINStatus{Verified: true}, nil},
		{statusCard{sw: 0x63C3}, piv.PINStatus{RetriesLeft: hwerr.TriesLeft(3)}, nil},
		{statusCard{sw: 0x63C0}, piv.PINStatus{RetriesLeft: hwerr.TriesLeft(0), Blocked: true}, nil},
		{statusCard{sw: 0x6983}, piv.PINStatus{RetriesLeft: hwerr.TriesLeft(0), Blocked: true}, nil},
		{statusCard{sw: 0x6A82}, piv.PINStatus{}, apdu.StatusError{SW: 0x6A82}},
		{statusCard{err: gone}, piv.PINStatus{}, gone},
	} {
		st, err := piv.NewClient(tt.card).PINStatus(context.Background())
		if st != tt.want || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
			t.Errorf("PINStatus on %04X/%v = %+v, %v; want %+v, %v", tt.card.sw, tt.card.err, st, err, tt.want, tt.wantErr)
		}
	}
}
