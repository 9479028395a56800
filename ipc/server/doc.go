// Package server is the plumbing of hwauthd's HTTP+JSON API on a Unix
// socket: listening (or socket activation), peer credentials read once per
// connection, a route table where every route declares its access checker,
// one error envelope, bounded JSON decoding and JSON-lines streams.
//
// It knows nothing of the daemon's resources: the daemon supplies the routes
// and the function that maps its errors to API errors.
package server
