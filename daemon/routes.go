package daemon

import "github.com/hwauthd/hwauthd/ipc/server"

// routes is the API's route table: every route declares who may call it.
// server.New refuses a route without an access checker, and
// TestEveryRouteDeclaresAccess walks this table.
func (d *Daemon) routes() []server.Route {
	a := d.access
	return []server.Route{
		{Method: "GET", Pattern: "/v1/status", Access: a.Anyone, Handler: d.getStatus},
		{Method: "GET", Pattern: "/v1/readers", Access: a.Anyone, Handler: d.getReaders},
		{Method: "GET", Pattern: "/v1/authenticators", Access: a.Anyone, Handler: d.getAuthenticators},
		{Method: "GET", Pattern: "/v1/authenticators/{id}", Access: a.Anyone, Handler: d.getAuthenticator},
		// PIN and signing: the handler narrows Anyone to the authenticator's
		// registered user, sign-in services and admins (mayUseDevice).
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/verify", Access: a.Anyone, Handler: d.postPINVerify},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/change", Access: a.Anyone, Handler: d.postPINChange},
		// Unblock: admins; the registered user too under
		// policy.self_service_unblock (mayUnblock).
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/unblock", Access: a.Anyone, Handler: d.postPINUnblock},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/sign", Access: a.Anyone, Handler: d.postSign},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/pin/set", Access: a.Anyone, Handler: d.postPINSet},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/credentials", Access: a.Anyone, Handler: d.postCredential},
		{Method: "POST", Pattern: "/v1/authenticators/{id}/assertions", Access: a.Anyone, Handler: d.postAssertion},
		{Method: "GET", Pattern: "/v1/events", Access: a.Anyone, Handler: d.getEvents},
		// TPM virtual smart cards: IT provisions them.
		{Method: "POST", Pattern: "/v1/virtual-smartcards", Access: a.Admin, Handler: d.postVirtualCard},
		{Method: "GET", Pattern: "/v1/virtual-smartcards", Access: a.Admin, Handler: d.getVirtualCards},
		{Method: "GET", Pattern: "/v1/virtual-smartcards/{id}", Access: a.Admin, Handler: d.getVirtualCard},
		{Method: "DELETE", Pattern: "/v1/virtual-smartcards/{id}", Access: a.Admin, Handler: d.deleteVirtualCard},
		{Method: "POST", Pattern: "/v1/virtual-smartcards/{id}/csr", Access: a.Admin, Handler: d.postVirtualCardCSR},
		{Method: "PUT", Pattern: "/v1/virtual-smartcards/{id}/certificate", Access: a.Admin, Handler: d.putVirtualCardCertificate},
		// Registrations: the handler narrows Anyone to the user themself,
		// sign-in services (reads) and admins (targetUser).
		{Method: "GET", Pattern: "/v1/users/{user}/registrations", Access: a.Anyone, Handler: d.getRegistrations},
		{Method: "POST", Pattern: "/v1/users/{user}/registrations", Access: a.Anyone, Handler: d.postRegistration},
		{Method: "DELETE", Pattern: "/v1/users/{user}/registrations/{rid}", Access: a.Anyone, Handler: d.deleteRegistration},
		{Method: "PUT", Pattern: "/v1/users/{user}/default", Access: a.Anyone, Handler: d.putDefault},
		{Method: "POST", Pattern: "/v1/users/{user}/forget", Access: a.Anyone, Handler: d.postForget},
		// Identity links: admins only.
		{Method: "GET", Pattern: "/v1/users/{user}/links", Access: a.Admin, Handler: d.getLinks},
		{Method: "POST", Pattern: "/v1/users/{user}/links", Access: a.Admin, Handler: d.postLink},
		{Method: "DELETE", Pattern: "/v1/users/{user}/links/{identity}", Access: a.Admin, Handler: d.deleteLink},
		// Sign-in: the handler narrows Anyone to the user themself and
		// sign-in services; sessions to their own user unless sign-in/admin.
		{Method: "POST", Pattern: "/v1/sign-in", Access: a.Anyone, Handler: d.postSignIn},
		{Method: "GET", Pattern: "/v1/sessions", Access: a.Anyone, Handler: d.getSessions},
		{Method: "DELETE", Pattern: "/v1/sessions/{id}", Access: a.Anyone, Handler: d.deleteSession},
	}
}
