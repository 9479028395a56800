package apitest

import "testing"

func TestDocumentedRoutes(t *testing.T) {
	routes, err := DocumentedRoutes("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"GET /v1/status", "POST /v1/authenticators/{id}/sign", "DELETE /v1/sessions/{id}", "GET /v1/events"} {
		if _, ok := routes[key]; !ok {
			t.Errorf("route %s not found in docs/api.md", key)
		}
	}
	if r := routes["POST /v1/virtual-smartcards"]; r.Who != "admin" {
		t.Errorf("virtual card creation: who = %q, want admin", r.Who)
	}
	if len(routes) < 20 {
		t.Errorf("only %d routes parsed", len(routes))
	}
}
