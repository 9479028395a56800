package apdu

import (
	"context"
	"fmt"

	"github.com/hwauthd/hwauthd/hwerr"
)

// Transmitter sends one raw command APDU to a card and returns the raw
// response APDU (data followed by SW1 SW2). The PC/SC card connection
// implements it, and so does the in-process adapter over the emulated card.
// Transmit must not keep apdu after it returns: Exchange clears it, since it
// may carry a PIN.
type Transmitter interface {
	Transmit(ctx context.Context, apdu []byte) ([]byte, error)
}

// insGetResponse is GET RESPONSE (ISO/IEC 7816-4 §7.6.1).
const insGetResponse = 0xC0

// claChaining is the command-chaining bit of CLA (ISO/IEC 7816-4 §5.4.2).
const claChaining = 0x10

// maxResponse bounds the data Exchange collects through 61xx chaining, so a
// card that keeps answering 61xx cannot make it loop for ever.
const maxResponse = 1 << 20

// Exchange sends cmd to the card and returns its complete response. Data
// longer than MaxShortData is sent with command chaining (CLA bit 10 on every
// part but the last); 61xx is followed by GET RESPONSE until the card has no
// more data; 6Cxx makes it resend the command once with Le xx.
//
// The error is a transport error, a malformed response (hwerr.ErrProtocol),
// or, when the final status word is not 9000, a StatusError; the Response
// carries the status word in every case the card answered.
func Exchange(ctx context.Context, t Transmitter, cmd Command) (Response, error) {
	last, err := sendChained(ctx, t, cmd)
	if err != nil {
		return Response{}, err
	}
	resp, err := transmit(ctx, t, last)
	if err != nil {
		return Response{}, err
	}
	if resp.SW&0xFF00 == SWWrongLe {
		last.Le = shortLe(byte(resp.SW))
		if resp, err = transmit(ctx, t, last); err != nil {
			return Response{}, err
		}
	}
	resp, err = getRemaining(ctx, t, resp)
	if err != nil {
		return Response{}, err
	}
	return resp, resp.Err()
}

// sendChained sends every part of cmd's data but the last with the chaining
// bit set and returns the last part, still to be sent.
func sendChained(ctx context.Context, t Transmitter, cmd Command) (Command, error) {
	data := cmd.Data
	for len(data) > MaxShortData {
		part := Command{CLA: cmd.CLA | claChaining, INS: cmd.INS, P1: cmd.P1, P2: cmd.P2, Data: data[:MaxShortData]}
		resp, err := transmit(ctx, t, part)
		if err != nil {
			return Command{}, err
		}
		if resp.SW != SWSuccess {
			return Command{}, fmt.Errorf("command chaining: %w", StatusError{SW: resp.SW})
		}
		data = data[MaxShortData:]
	}
	cmd.Data = data
	return cmd, nil
}

// getRemaining follows 61xx status words with GET RESPONSE and appends the
// data to resp.
func getRemaining(ctx context.Context, t Transmitter, resp Response) (Response, error) {
	data := resp.Data
	for resp.SW&0xFF00 == SWBytesRemaining {
		if len(data) > maxResponse {
			return Response{}, fmt.Errorf("response longer than %d bytes: %w", maxResponse, hwerr.ErrProtocol)
		}
		get := Command{INS: insGetResponse, Le: shortLe(byte(resp.SW))}
		var err error
		if resp, err = transmit(ctx, t, get); err != nil {
			return Response{}, err
		}
		if len(resp.Data) == 0 && resp.SW&0xFF00 == SWBytesRemaining {
			return Response{}, fmt.Errorf("GET RESPONSE returned no data but more remaining: %w", hwerr.ErrProtocol)
		}
		data = append(data, resp.Data...)
	}
	resp.Data = data
	return resp, nil
}

// transmit encodes cmd, sends it and parses the answer.
func transmit(ctx context.Context, t Transmitter, cmd Command) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	b, err := cmd.Bytes()
	if err != nil {
		return Response{}, err
	}
	raw, err := t.Transmit(ctx, b)
	clear(b) // the command may hold a PIN or PUK
	if err != nil {
		return Response{}, err
	}
	resp, err := ParseResponse(raw)
	if err != nil {
		return Response{}, fmt.Errorf("%w: %w", hwerr.ErrProtocol, err)
	}
	return resp, nil
}
