package client

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hwauthd/hwauthd/ipc"
	"github.com/hwauthd/hwauthd/ipc/apitest"
)

// answerDecodesAsEncodingJSON fails unless an answer of type T with every
// field set, as the daemon encodes it (encoding/json), decodes under the
// client's decoder (decodeAnswer, encoding/json/v2) to what encoding/json
// decodes it to: embedded structs, field names and their case, times and
// base64 bytes read the same under both.
func answerDecodesAsEncodingJSON[T any](t *testing.T) {
	t.Helper()
	var v T
	apitest.Fill(t, reflect.ValueOf(&v).Elem())
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var v1, v2 T
	if err := json.Unmarshal(b, &v1); err != nil {
		t.Fatalf("%T: encoding/json: %v", v, err)
	}
	if err := decodeAnswer("GET", "/", b, &v2); err != nil {
		t.Fatalf("%T: %v", v, err)
	}
	if !reflect.DeepEqual(v1, v2) {
		t.Errorf("%T decodes differently:\nencoding/json    %+v\nencoding/json/v2 %+v\nfrom %s", v, v1, v2, b)
	}
}

// TestAnswersDecodeAsEncodingJSON: every answer type the client decodes
// with decodeAnswer (the event stream and the error envelope keep
// encoding/json).
func TestAnswersDecodeAsEncodingJSON(t *testing.T) {
	answerDecodesAsEncodingJSON[ipc.Status](t)
	answerDecodesAsEncodingJSON[ipc.ReadersResponse](t)
	answerDecodesAsEncodingJSON[ipc.AuthenticatorsResponse](t)
	answerDecodesAsEncodingJSON[ipc.Authenticator](t)
	answerDecodesAsEncodingJSON[ipc.PINResult](t)
	answerDecodesAsEncodingJSON[ipc.SignResponse](t)
	answerDecodesAsEncodingJSON[ipc.Credential](t)
	answerDecodesAsEncodingJSON[ipc.Assertion](t)
	answerDecodesAsEncodingJSON[ipc.VirtualSmartcard](t)
	answerDecodesAsEncodingJSON[ipc.VirtualSmartcardsResponse](t)
	answerDecodesAsEncodingJSON[ipc.CSRResponse](t)
	answerDecodesAsEncodingJSON[ipc.VSCUnblockChallenge](t)
	answerDecodesAsEncodingJSON[ipc.VSCAttestationChallenge](t)
	answerDecodesAsEncodingJSON[ipc.Registration](t)
	answerDecodesAsEncodingJSON[ipc.RegistrationsResponse](t)
	answerDecodesAsEncodingJSON[ipc.RegistrationRemoved](t)
	answerDecodesAsEncodingJSON[ipc.Requirements](t)
	answerDecodesAsEncodingJSON[ipc.Session](t)
	answerDecodesAsEncodingJSON[ipc.SessionsResponse](t)
	answerDecodesAsEncodingJSON[ipc.SignInResponse](t)
	answerDecodesAsEncodingJSON[ipc.ForgetResponse](t)
	answerDecodesAsEncodingJSON[ipc.LinksResponse](t)
}
