package daemon

import "github.com/hwauthd/hwauthd/ipc/server"

// route is one entry of the route table with its typed access checker.
type route struct {
	method, pattern string
	access          checker
	handler         server.HandlerFunc
}

// routeTable is the API's route table: every route declares who may call it
// (access.go). server.New refuses a route without a checker;
// TestAccessMatrix runs every route as every kind of caller against the
// matrix in docs/api.md.
func (d *Daemon) routeTable() []route {
	a := d.rules
	anyone := openAccess{}
	admin := adminAccess{a}
	owner := ownerAccess{a}
	self := userAccess{a: a}
	selfService := userAccess{a: a, selfService: true}
	selfOrSignIn := userAccess{a: a, signIn: true}
	return []route{
		{"GET", "/v1/status", anyone, d.getStatus},
		{"GET", "/v1/readers", anyone, d.getReaders},
		{"GET", "/v1/authenticators", anyone, d.getAuthenticators},
		{"GET", "/v1/authenticators/{id}", anyone, d.getAuthenticator},
		// PINs and keys of an authenticator: whom it is registered to.
		{"POST", "/v1/authenticators/{id}/pin/verify", owner, d.postPINVerify},
		{"POST", "/v1/authenticators/{id}/pin/change", owner, d.postPINChange},
		{"POST", "/v1/authenticators/{id}/pin/unblock", unblockAccess{a}, d.postPINUnblock},
		{"POST", "/v1/authenticators/{id}/sign", owner, d.postSign},
		{"POST", "/v1/authenticators/{id}/pin/set", owner, d.postPINSet},
		{"POST", "/v1/authenticators/{id}/credentials", owner, d.postCredential},
		{"POST", "/v1/authenticators/{id}/assertions", owner, d.postAssertion},
		{"GET", "/v1/events", anyone, d.getEvents},
		// TPM virtual smart cards: IT provisions them.
		{"POST", "/v1/virtual-smartcards", admin, d.postVirtualCard},
		{"GET", "/v1/virtual-smartcards", admin, d.getVirtualCards},
		{"GET", "/v1/virtual-smartcards/{id}", admin, d.getVirtualCard},
		{"DELETE", "/v1/virtual-smartcards/{id}", admin, d.deleteVirtualCard},
		{"POST", "/v1/virtual-smartcards/{id}/csr", admin, d.postVirtualCardCSR},
		{"PUT", "/v1/virtual-smartcards/{id}/certificate", admin, d.putVirtualCardCertificate},
		{"POST", "/v1/virtual-smartcards/{id}/attestation", admin, d.postVirtualCardAttestation},
		{"POST", "/v1/virtual-smartcards/{id}/attestation/activate", admin, d.postVirtualCardAttestationActivate},
		{"POST", "/v1/virtual-smartcards/{id}/unblock", admin, d.postVirtualCardUnblock},
		// A user's registrations and remembered information.
		{"GET", "/v1/users/{user}/registrations", selfOrSignIn, d.getRegistrations},
		{"POST", "/v1/users/{user}/registrations", selfService, d.postRegistration},
		{"DELETE", "/v1/users/{user}/registrations/{rid}", selfService, d.deleteRegistration},
		{"PUT", "/v1/users/{user}/default", self, d.putDefault},
		{"POST", "/v1/users/{user}/forget", self, d.postForget},
		{"GET", "/v1/users/{user}/requirements", selfOrSignIn, d.getRequirements},
		// Identity links.
		{"GET", "/v1/users/{user}/links", self, d.getLinks},
		{"POST", "/v1/users/{user}/links", admin, d.postLink},
		{"DELETE", "/v1/users/{user}/links/{identity}", selfService, d.deleteLink},
		// Sign-in and sessions.
		{"POST", "/v1/sign-in", signInAccess{a}, d.postSignIn},
		{"GET", "/v1/sessions", sessionsAccess{a}, d.getSessions},
		{"DELETE", "/v1/sessions/{id}", sessionAccess{a}, d.deleteSession},
		{"POST", "/v1/sessions/{id}/open", sessionAccess{a}, d.postSessionOpen},
	}
}

// routes is the route table as the server takes it.
func (d *Daemon) routes() []server.Route {
	table := d.routeTable()
	out := make([]server.Route, len(table))
	for i, rt := range table {
		out[i] = server.Route{Method: rt.method, Pattern: rt.pattern, Access: rt.access, Handler: rt.handler}
	}
	return out
}
