//go:build race

package client

// raceBuild: see dialSocket.
const raceBuild = true
