// Package pam holds hwauthd's PAM integration: the service module
// pam_hwauth.so (./module, a c-shared Go library), its logic (./signin), an
// example service file (hwauth.pam) and the tests that run the module in a
// real PAM stack (pamtester under pam_wrapper, without touching /etc).
//
// Build the module with
//
//	go build -buildmode=c-shared -o build/pam_hwauth.so ./pam/module
package pam
